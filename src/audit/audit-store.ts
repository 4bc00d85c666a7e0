import { randomInt } from 'node:crypto';
import type { Queryable } from '../store/database';
import type { AuditRecord } from './audit-event';
import { auditColumnsOf, storedAuditEvent } from './audit-event';
import type { EventRow } from './audit-chain';
import { ChainHeads, appendToChain } from './audit-chain';
import { groupAppender } from './audit-group';
import { timeOrderedUuid } from './event-id';

/** Independent hash chains: a request locks one chain's head for one statement, so requests rarely queue. */
export const AUDIT_CHAINS = 16;

export interface AuditWriter {
  readonly enabled: boolean;
  write(q: Queryable, record: AuditRecord): Promise<void>;
}

/**
 * Picks a chain no other write of this process is appending to, starting at a random one: a
 * chain's head row stays locked until the inserting transaction has committed (WAL flushed), so
 * two requests on one chain would queue behind each other's fsync. Other API nodes still pick at
 * random, and then only briefly wait.
 */
function chainPicker(): { take(): number; release(chain: number): void } {
  const inFlight = new Array<number>(AUDIT_CHAINS).fill(0);
  return {
    take() {
      const start = randomInt(AUDIT_CHAINS);
      let best = start;
      for (let k = 1; k < AUDIT_CHAINS && inFlight[best] !== 0; k++) {
        const c = (start + k) % AUDIT_CHAINS;
        if ((inFlight[c] as number) < (inFlight[best] as number)) best = c;
      }
      inFlight[best] = (inFlight[best] as number) + 1;
      return best;
    },
    release(chain) {
      inFlight[chain] = (inFlight[chain] as number) - 1;
    },
  };
}

/** Writes outside a transaction (a Database, not a transaction's Queryable) can be grouped. */
function isDatabase(q: Queryable): boolean {
  return typeof (q as { transaction?: unknown }).transaction === 'function';
}

export function createAuditWriter(enabled: boolean): AuditWriter {
  const chains = chainPicker();
  const heads = new ChainHeads();
  const appenders = new WeakMap<Queryable, (row: EventRow) => Promise<void>>();
  return {
    enabled,
    async write(q: Queryable, record: AuditRecord): Promise<void> {
      if (!enabled) return;
      const row = eventRow(record);
      if (isDatabase(q)) {
        let append = appenders.get(q);
        if (!append) {
          append = groupAppender(q, chains, heads, GROUP_PARALLEL);
          appenders.set(q, append);
        }
        await append(row);
        return;
      }
      // Inside a write transaction: the event commits (or not) with the pointer change.
      const chain = chains.take();
      try {
        await appendToChain(q, heads, chain, [row]);
      } finally {
        chains.release(chain);
      }
    },
  };
}

/** Statements in flight at once for grouped writes (each holds one chain and one connection). */
const GROUP_PARALLEL = 2;

/** The row of one event: its stored facts (the text the chain hashes) and the columns derived from them. */
export function eventRow(record: AuditRecord, recorded = new Date(), id: string = timeOrderedUuid(recorded.getTime())): EventRow {
  const stored = storedAuditEvent(record, recorded, id);
  return { id, recorded: stored.recorded, ...auditColumnsOf(stored), resource: JSON.stringify(stored) };
}
