import type { AuditIndexColumns } from './audit-event';
import type { Queryable } from '../store/database';

/** One event ready to append: its text and the typed columns derived from the same record. */
export interface EventRow extends AuditIndexColumns {
  id: string;
  recorded: string;
  resource: string;
}

const COLUMNS = ['id', 'recorded', 'patients', 'agent_ods', 'agent_user', 'action', 'subtype', 'outcome', 'purpose', 'break_glass', 'resource'] as const;
const CASTS = ['text', 'timestamptz', 'text[]', 'text', 'text', 'text', 'text', 'text', 'text', 'boolean', 'text'];

/**
 * Appends n events to one chain in one statement: the head is locked, the chain extended event by
 * event (recursive CTE, sha256 as for a single append) and the head moved to the last hash. Rows
 * are inserted in chain order, so seq rises with chain_pos as verify expects. Each value is its
 * own parameter ($1 is the chain): event texts travel as they are, neither escaped into a JSON or
 * array literal by Node nor parsed out of one by PostgreSQL.
 */
function insertManySql(n: number): string {
  const rows = Array.from({ length: n }, (_, k) => `(${k + 1}, ${CASTS.map((cast, c) => `$${2 + k * COLUMNS.length + c}::${cast}`).join(', ')})`);
  return `with recursive input(n, ${COLUMNS.join(', ')}) as (values ${rows.join(', ')}),
  head as (select pos, head from audit_chain where chain = $1 for update),
  walk(n, pos, hash) as (
    select i.n, h.pos + 1, sha256(h.head || convert_to(i.resource, 'UTF8')) from head h join input i on i.n = 1
    union all
    select i.n, w.pos + 1, sha256(w.hash || convert_to(i.resource, 'UTF8')) from walk w join input i on i.n = w.n + 1),
  moved as (
    update audit_chain c set pos = l.pos, head = l.hash from (select pos, hash from walk order by n desc limit 1) l where c.chain = $1 returning 1)
  insert into audit_event (id, recorded, chain, chain_pos, hash, patients, agent_ods, agent_user, action, subtype, outcome, purpose, break_glass, resource)
  select i.id, i.recorded, $1, w.pos, w.hash, i.patients, i.agent_ods, i.agent_user, i.action, i.subtype, i.outcome, i.purpose, i.break_glass, i.resource
    from walk w join input i on i.n = w.n order by w.n`;
}

const statements: string[] = [];
function insertMany(n: number): string {
  return (statements[n] ??= insertManySql(n));
}

function valuesOf(chain: number, group: Pending[]): (string | number | boolean | string[] | null)[] {
  const out: (string | number | boolean | string[] | null)[] = [chain];
  for (const { row } of group) out.push(row.id, row.recorded, row.patients, row.agent_ods, row.agent_user, row.action, row.subtype, row.outcome, row.purpose, row.break_glass, row.resource);
  return out;
}

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
export function groupAppender(db: Queryable, chains: ChainPicker, parallel: number): (row: EventRow) => Promise<void> {
  const queue: Pending[] = [];
  let running = 0;
  const pump = (): void => {
    while (running < parallel && queue.length > 0) {
      const group = queue.splice(0, MAX_GROUP);
      running++;
      const chain = chains.take();
      db.query(insertMany(group.length), valuesOf(chain, group)).then(
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
