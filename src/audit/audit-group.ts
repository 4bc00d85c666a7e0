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

/**
 * Group commit for events written outside a transaction (reads): a few statements run at once,
 * each on its own chain; events arriving while they run wait and go together in the next one.
 * At low load an event is written at once; under load one statement and one WAL flush serve
 * many requests. Every caller still resolves only after its own event has committed.
 */
export function groupAppender(db: Queryable, chains: ChainPicker, heads: ChainHeads, parallel: number): (row: EventRow) => Promise<void> {
  const queue: Pending[] = [];
  let running = 0;
  const pump = (): void => {
    while (running < parallel && queue.length > 0) {
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
