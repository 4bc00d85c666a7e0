import type { Queryable } from '../store/database';
import type { ChainHeads, EventRow } from './audit-chain';
import { appendToChain } from './audit-chain';

export type { EventRow };

interface Pending {
  row: EventRow;
  resolve(): void;
  reject(e: unknown): void;
}

export interface ChainPicker {
  take(): number;
  release(chain: number): void;
}

const MAX_GROUP = 64;
/** Events waiting that justify a further statement while one is in flight. */
const BACKLOG = 16;

/**
 * Group commit for events written outside a transaction (reads): events arriving while a
 * statement runs wait and go together in the next one, so under load one statement and one WAL
 * flush serve many requests. A durable commit costs the database as much as several rows (about
 * 170 µs against 30-60 µs a row on the project machine), so one statement runs at a time while
 * the queue is short, which makes the groups as large as the load allows; a further one (up to
 * `parallel`, each on its own chain) starts only when `BACKLOG` events wait behind a slow one.
 * At low load an event is written at once. Every caller resolves only after its own event has
 * committed.
 */
export function groupAppender(db: Queryable, chains: ChainPicker, heads: ChainHeads, parallel: number): (row: EventRow) => Promise<void> {
  const queue: Pending[] = [];
  let running = 0;
  const pump = (): void => {
    while (queue.length > 0 && (running === 0 || (running < parallel && queue.length >= BACKLOG))) {
      const group = queue.splice(0, MAX_GROUP);
      running++;
      const chain = chains.take();
      appendToChain(db, heads, chain, group.map((p) => p.row)).then(
        () => {
          for (const p of group) p.resolve();
        },
        (e: unknown) => {
          for (const p of group) p.reject(e);
        },
      ).finally(() => {
        chains.release(chain);
        running--;
        pump();
      });
    }
  };
  return (row) =>
    new Promise<void>((resolve, reject) => {
      queue.push({ row, resolve, reject });
      pump();
    });
}
