import { createHash } from 'node:crypto';
import type { Database, Queryable, SqlValue } from '../store/database';
import type { AuditIndexColumns } from './audit-event';

/**
 * The hash chains of the audit trail. Event n of a chain stores sha256(hash of event n-1 || its
 * text); `audit_chain` holds each chain's head (position and hash). verify.ts walks the same rule.
 *
 * Appends are optimistic: this process remembers each chain's head as it last wrote it, hashes the
 * new events itself, and the statement moves the head only if it is still where it was remembered
 * (position and hash), inserting the events in the same statement. If another process or node
 * moved it meanwhile, or a transaction that moved it rolled back, nothing is written and the head
 * is read again: a stale memory costs a retry, never a broken chain. Hashing here rather than in
 * SQL keeps the statement a plain insert (a recursive CTE cost more than the rows it wrote).
 */
export interface EventRow extends AuditIndexColumns {
  id: string;
  recorded: string;
  resource: string;
}

export function genesisHead(chain: number): Buffer {
  return createHash('sha256').update(`locus-audit-genesis:${chain}`, 'utf8').digest();
}

export function chainHash(previous: Uint8Array, text: string): Buffer {
  return createHash('sha256').update(previous).update(text, 'utf8').digest();
}

interface Head {
  pos: number;
  head: Buffer;
}

const COLUMNS = ['id', 'recorded', 'pos', 'hash', 'patients', 'agent_ods', 'agent_user', 'action', 'subtype', 'outcome', 'purpose', 'break_glass', 'resource'] as const;
const CASTS = ['text', 'timestamptz', 'bigint', 'bytea', 'text[]', 'text', 'text', 'text', 'text', 'text', 'text', 'boolean', 'text'];
const FIRST = 6; // $1 chain, $2 new pos, $3 new head, $4 old pos, $5 old head

function appendSql(n: number): string {
  const rows = Array.from({ length: n }, (_, k) => `(${CASTS.map((cast, c) => `$${FIRST + k * COLUMNS.length + c}::${cast}`).join(', ')})`);
  return `with moved as (
    update audit_chain set pos = $2::bigint, head = $3::bytea where chain = $1::integer and pos = $4::bigint and head = $5::bytea returning 1)
  insert into audit_event (id, recorded, chain, chain_pos, hash, patients, agent_ods, agent_user, action, subtype, outcome, purpose, break_glass, resource)
  select v.id, v.recorded, $1::integer, v.pos, v.hash, v.patients, v.agent_ods, v.agent_user, v.action, v.subtype, v.outcome, v.purpose, v.break_glass, v.resource
    from (values ${rows.join(', ')}) v(${COLUMNS.join(', ')})
   where exists (select 1 from moved)
   order by v.pos`;
}

const statements: string[] = [];
const appendStatement = (n: number): string => (statements[n] ??= appendSql(n));

/** Each process's memory of the chain heads it wrote, per database. */
export class ChainHeads {
  private readonly byDatabase = new WeakMap<object, Map<number, Head>>();

  private of(q: Queryable): Map<number, Head> {
    const key = q.root ?? q;
    let heads = this.byDatabase.get(key);
    if (!heads) {
      heads = new Map();
      this.byDatabase.set(key, heads);
    }
    return heads;
  }

  async head(q: Queryable, chain: number): Promise<Head> {
    const known = this.of(q).get(chain);
    if (known) return known;
    const r = await q.query<{ pos: number | string; head: Uint8Array }>('select pos, head from audit_chain where chain = $1', [chain]);
    const row = r.rows[0];
    if (!row) throw new Error(`audit chain ${chain} does not exist`);
    return { pos: Number(row.pos), head: Buffer.from(row.head) };
  }

  remember(q: Queryable, chain: number, head: Head): void {
    this.of(q).set(chain, head);
  }

  forget(q: Queryable, chain: number): void {
    this.of(q).delete(chain);
  }
}

const ATTEMPTS = 8;

/**
 * Appends events to one chain, in order, in one statement (plus a read of the head when this
 * process does not know it, or knew it wrongly). Inside a transaction the events commit or roll
 * back with it; the head then stays locked by that transaction until it ends.
 */
export async function appendToChain(q: Queryable | Database, heads: ChainHeads, chain: number, rows: readonly EventRow[]): Promise<void> {
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    const from = await heads.head(q, chain);
    const values: SqlValue[] = [chain, 0, Buffer.alloc(0), from.pos, from.head];
    let pos = from.pos;
    let hash = from.head;
    for (const row of rows) {
      pos += 1;
      hash = chainHash(hash, row.resource);
      values.push(row.id, row.recorded, pos, hash, row.patients, row.agent_ods, row.agent_user, row.action, row.subtype, row.outcome, row.purpose, row.break_glass, row.resource);
    }
    values[1] = pos;
    values[2] = hash;
    const r = await q.query(appendStatement(rows.length), values);
    if (r.rowCount === rows.length) {
      heads.remember(q, chain, { pos, head: hash });
      return;
    }
    heads.forget(q, chain);
  }
  throw new Error(`audit chain ${chain} kept moving under ${ATTEMPTS} attempts to append`);
}
