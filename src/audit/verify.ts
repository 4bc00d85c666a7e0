import type { Queryable } from '../store/database';
import { NHS_NUMBER_SYSTEM } from '../registry/nhs-number';
import { chainHash, genesisHead } from './audit-chain';
import { AUDIT_CHAINS } from './audit-store';
import { columnMismatch } from './verify-columns';
import type { VerifyRow } from './verify-columns';

/**
 * Verifies the audit trail's hash chains (audit-store.ts): in each chain, event n's hash must be
 * sha256(hash of event n-1 || event text), positions must run 1..N without gaps, sequence
 * numbers must rise along the chain, the indexed columns must agree with the stored event, and
 * the chain head in `audit_chain` must be event N's hash. Hashes are recomputed here, in Node,
 * from rows streamed in (chain, chain_pos) keyset batches, so memory stays bounded.
 */
export type TamperKind = 'modified' | 'deleted' | 'inserted' | 'reordered';

export interface AuditProblem {
  kind: TamperKind;
  chain: number;
  /** The chain position where the chain first breaks. */
  position: number;
  /** The event found at (or right after) that position, when there is one. */
  seq?: number;
  id?: string;
  detail: string;
}

export interface VerifyResult {
  ok: boolean;
  events: number;
  chains: number;
  /** At most one problem per chain: the first place that chain breaks. */
  problems: AuditProblem[];
  ms: number;
}

export interface VerifyOptions {
  batchSize?: number;
  /** Chains verified at once (each needs its own connection on PostgreSQL). */
  concurrency?: number;
  onProgress?(events: number): void;
}


const same = (a: Uint8Array, b: Uint8Array): boolean => Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength)) === 0;

const ROW_COLUMNS = 'seq, id, chain_pos, hash, resource, recorded, patients, agent_ods, agent_user, action, subtype, outcome, purpose, break_glass';

interface ChainHead {
  pos: number;
  head: Uint8Array;
}

async function chainHeads(q: Queryable): Promise<Map<number, ChainHead>> {
  const r = await q.query<{ chain: number; pos: number; head: Uint8Array }>('select chain, pos, head from audit_chain order by chain');
  return new Map(r.rows.map((row) => [row.chain, { pos: Number(row.pos), head: row.head }]));
}

async function chainNumbers(q: Queryable, heads: Map<number, ChainHead>): Promise<number[]> {
  // Events on a chain that has no head row (a forged chain) are verified too, and fail.
  const r = await q.query<{ chain: number }>('select distinct chain from audit_event');
  return [...new Set([...heads.keys(), ...r.rows.map((x) => x.chain), ...Array.from({ length: AUDIT_CHAINS }, (_, i) => i)])].sort((a, b) => a - b);
}

interface ChainState {
  chain: number;
  expected: number;
  prev: Buffer;
  prevPrev?: Buffer;
  prevSeq: number;
  events: number;
}

async function fetchFrom(q: Queryable, chain: number, fromPos: number, limit: number): Promise<VerifyRow[]> {
  const r = await q.query<VerifyRow>(`select ${ROW_COLUMNS} from audit_event where chain = $1 and chain_pos >= $2 order by chain_pos limit $3`, [chain, fromPos, limit]);
  return r.rows.map((row) => ({ ...row, seq: Number(row.seq), chain_pos: Number(row.chain_pos) }));
}

interface WalkRow {
  seq: number;
  id: string;
  chain_pos: number;
  hash: Uint8Array;
  resource: string;
  columns_ok: boolean;
}

/**
 * The walk's batches. PostgreSQL compares the typed columns with the stored event (jsonb, in C,
 * on the database's core) while Node hashes: the same rule as columnMismatch (for stored facts,
 * format 1, and for events written before it as BALP AuditEvents), which names the
 * column when this says one disagrees. A batch holding text that is not JSON cannot be cast;
 * it is read again without the check and judged in Node.
 */
const WALK = `select seq, id, chain_pos, hash, resource, coalesce(case when j->>'format' = '1' then
    j->>'id' = id
    and (j->>'recorded')::timestamptz = recorded
    and j->>'action' = action
    and j->>'outcome' = outcome
    and (case when j->>'subtype' = 'operation' then coalesce(j->>'operation', 'operation') else j->>'subtype' end) = subtype
    and (j#>>'{agent,purposeOfUse}') is not distinct from purpose
    and coalesce(j#>>'{agent,purposeOfUse}' = 'ETREAT' and (j->'agent') ? 'breakGlassReason', false) = break_glass
    and coalesce(j#>>'{agent,subject}', j#>>'{claimed,subject}') is not distinct from agent_user
    and coalesce(j#>>'{agent,organization}', j#>>'{claimed,organization}') is not distinct from agent_ods
    and patients = array(select p from jsonb_array_elements_text(j->'patients') with ordinality as x(p, n) order by n)
  else
    j->>'id' = id
    and (j->>'recorded')::timestamptz = recorded
    and j->>'action' = action
    and j->>'outcome' = outcome
    and j#>>'{subtype,0,code}' = subtype
    and (j#>>'{purposeOfEvent,0,coding,0,code}') is not distinct from purpose
    and coalesce((j->'meta'->'security') @> '[{"code":"BTG"}]'::jsonb, false) = break_glass
    and coalesce(agent_user, 'anonymous') is not distinct from (select a#>>'{who,identifier,value}' from jsonb_array_elements(j->'agent') a where a#>>'{type,coding,0,code}' = 'humanuser' limit 1)
    and nullif(agent_ods, '') is not distinct from (select a#>>'{who,identifier,value}' from jsonb_array_elements(j->'agent') a where a#>>'{type,coding,0,code}' = 'PROV' limit 1)
    and patients = array(select v from (select e#>>'{what,identifier,value}' as v, min(n) as n from jsonb_array_elements(j->'entity') with ordinality as x(e, n)
                                          where e#>>'{what,identifier,system}' = $4 and e#>>'{what,identifier,value}' is not null group by 1) p order by n)
  end, false) as columns_ok
  from (select *, resource::jsonb as j from audit_event where chain = $1 and chain_pos >= $2 order by chain_pos limit $3) t order by chain_pos`;

async function walkFrom(q: Queryable, chain: number, fromPos: number, limit: number): Promise<WalkRow[]> {
  try {
    const r = await q.query<WalkRow>(WALK, [chain, fromPos, limit, NHS_NUMBER_SYSTEM]);
    return r.rows.map((row) => ({ ...row, seq: Number(row.seq), chain_pos: Number(row.chain_pos) }));
  } catch {
    return (await fetchFrom(q, chain, fromPos, limit)).map((row) => ({ ...row, columns_ok: columnMismatch(row) === undefined }));
  }
}

/** Names the tampering at the first break in a chain, from the rows around it. */
async function classify(q: Queryable, s: ChainState, head: ChainHead | undefined, why: 'gap' | 'hash' | 'seq'): Promise<AuditProblem> {
  const [row0, row1] = await fetchFrom(q, s.chain, s.expected, 2);
  const at = { chain: s.chain, position: s.expected };
  if (!row0) return { ...at, kind: 'deleted', detail: `the chain head records ${head?.pos ?? 0} events but the trail ends at position ${s.expected - 1}` };
  const found = { ...at, seq: row0.seq, id: row0.id };
  if (why === 'gap' || row0.chain_pos !== s.expected) {
    return { ...found, kind: 'deleted', detail: `positions ${s.expected}..${row0.chain_pos - 1} are missing; the next event is at ${row0.chain_pos}` };
  }
  if (why === 'seq') return { ...found, kind: 'reordered', detail: `event seq ${row0.seq} follows seq ${s.prevSeq} in the chain: the trail's order was changed` };
  // A valid-looking event slipped in after position n-2: this one chains from n-2, not from n-1.
  if (s.prevPrev && same(chainHash(s.prevPrev, row0.resource), row0.hash)) {
    return { ...at, position: s.expected - 1, kind: 'inserted', detail: `the event at position ${s.expected - 1} is not part of the original chain (the next one chains past it)` };
  }
  if (row1 && same(chainHash(s.prev, row1.resource), row1.hash)) {
    if (same(chainHash(row1.hash, row0.resource), row0.hash)) {
      return { ...found, kind: 'reordered', detail: `the events at positions ${s.expected} and ${s.expected + 1} were swapped` };
    }
    return { ...found, kind: 'inserted', detail: `the event at position ${s.expected} is not part of the original chain (the next one chains past it)` };
  }
  if (row1 && row1.seq < row0.seq) return { ...found, kind: 'reordered', detail: `event seq ${row0.seq} precedes seq ${row1.seq} in the chain: the trail's order was changed` };
  const storedHashAuthentic = row1 ? same(chainHash(row0.hash, row1.resource), row1.hash) : head !== undefined && head.pos === row0.chain_pos && same(head.head, row0.hash);
  if (storedHashAuthentic && head) {
    const r = await q.query<{ n: number }>('select count(*)::int as n from audit_event where chain = $1', [s.chain]);
    if ((r.rows[0]?.n ?? 0) < head.pos) {
      return { ...found, kind: 'deleted', detail: `events before position ${s.expected} were deleted and the later ones renumbered` };
    }
  }
  return { ...found, kind: 'modified', detail: `the event at position ${s.expected} does not match its hash` };
}

async function verifyChain(q: Queryable, chain: number, head: ChainHead | undefined, o: Required<Pick<VerifyOptions, 'batchSize'>> & VerifyOptions, counted: { n: number }): Promise<{ events: number; problem?: AuditProblem }> {
  const s: ChainState = { chain, expected: 1, prev: genesisHead(chain), prevSeq: 0, events: 0 };
  for (;;) {
    const rows = await walkFrom(q, chain, s.expected, o.batchSize);
    for (const row of rows) {
      if (row.chain_pos !== s.expected) return { events: s.events, problem: await classify(q, s, head, 'gap') };
      const computed = chainHash(s.prev, row.resource);
      if (!same(computed, row.hash)) return { events: s.events, problem: await classify(q, s, head, 'hash') };
      if (row.seq <= s.prevSeq) return { events: s.events, problem: await classify(q, s, head, 'seq') };
      if (!row.columns_ok) {
        const [full] = await fetchFrom(q, chain, row.chain_pos, 1);
        const column = full ? columnMismatch(full) : undefined;
        return { events: s.events, problem: { kind: 'modified', chain, position: s.expected, seq: row.seq, id: row.id, detail: `column ${column ?? '(indexed)'} does not match the stored event` } };
      }
      s.prevPrev = s.prev;
      s.prev = computed;
      s.prevSeq = row.seq;
      s.expected++;
      s.events++;
    }
    counted.n += rows.length;
    o.onProgress?.(counted.n);
    if (rows.length < o.batchSize) break;
  }
  const last = s.expected - 1;
  const headPos = head?.pos ?? 0;
  if (!head && last > 0) return { events: s.events, problem: { kind: 'inserted', chain, position: 1, detail: `chain ${chain} has events but no head in audit_chain` } };
  if (headPos > last) return { events: s.events, problem: { kind: 'deleted', chain, position: last + 1, detail: `the chain head records ${headPos} events but the trail ends at position ${last}` } };
  if (headPos < last) {
    const [extra] = await fetchFrom(q, chain, headPos + 1, 1);
    return { events: s.events, problem: { kind: 'inserted', chain, position: headPos + 1, seq: extra?.seq, id: extra?.id, detail: `events after position ${headPos} are beyond the chain head` } };
  }
  if (head && !same(head.head, s.prev)) {
    const [lastRow] = await fetchFrom(q, chain, last, 1);
    return { events: s.events, problem: { kind: 'modified', chain, position: last, seq: lastRow?.seq, id: lastRow?.id, detail: 'the chain head does not match the last event' } };
  }
  return { events: s.events };
}

export async function verifyAuditTrail(q: Queryable, options: VerifyOptions = {}): Promise<VerifyResult> {
  const started = process.hrtime.bigint();
  const o = { batchSize: 5000, concurrency: 1, ...options };
  const heads = await chainHeads(q);
  const chains = await chainNumbers(q, heads);
  const counted = { n: 0 };
  const results: { events: number; problem?: AuditProblem }[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < chains.length) {
      const chain = chains[next++] as number;
      results.push(await verifyChain(q, chain, heads.get(chain), o, counted));
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, o.concurrency) }, () => worker()));
  const problems = results.flatMap((r) => (r.problem ? [r.problem] : [])).sort((a, b) => (a.seq ?? Infinity) - (b.seq ?? Infinity) || a.chain - b.chain);
  return { ok: problems.length === 0, events: results.reduce((n, r) => n + r.events, 0), chains: chains.length, problems, ms: Number(process.hrtime.bigint() - started) / 1e6 };
}

export function describeProblem(p: AuditProblem): string {
  return `${p.kind.toUpperCase()}: chain ${p.chain}, position ${p.position}${p.seq !== undefined ? `, seq ${p.seq}` : ''}${p.id ? `, event ${p.id}` : ''}: ${p.detail}`;
}
