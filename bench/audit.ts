import type { AuditIndexColumns } from '../src/audit/audit-event';
import { randomUUID } from 'node:crypto';
import { eventRow } from '../src/audit/audit-store';
import type { Principal } from '../src/access/principal';
import type { AuditRecord } from '../src/audit/audit-event';
import { chainHash } from '../src/audit/audit-chain';
import { verifyAuditTrail } from '../src/audit/verify';
import type { Database, Queryable } from '../src/store/database';
import { testNhsNumber } from '../src/registry/nhs-number';

/**
 * Audit trail figures: bulk-appends synthetic events with correct hash chains, then times
 * `verifyAuditTrail` over the whole trail. Used by bench/run.ts (n = 1,000,000 on PostgreSQL) and
 * by tests that need a large trail quickly.
 */
const ORGS = ['RRK', 'RJE', 'RL4', 'RXK', 'RNA', 'RBK', 'RWP', 'RLQ', 'RJC', 'RKB', 'RYW', 'RQ3', 'RR1', 'RXW', 'RLT'];
const BATCH = 5000;

function syntheticRecord(i: number): AuditRecord {
  const org = ORGS[i % ORGS.length] as string;
  const glass = i % 997 === 0;
  const principal: Principal = {
    subject: `clinician-${i % 5000}@${org}`,
    issuer: 'urn:locus:dev-issuer',
    organization: org,
    role: 'clinician',
    scopes: [],
    purposeOfUse: glass ? 'ETREAT' : 'TREAT',
    breakGlassReason: glass ? 'Emergency department, patient unconscious' : undefined,
    clientId: 'bench-viewer',
    tokenId: randomUUID(),
  };
  const nhs = testNhsNumber(i % 500_000);
  return {
    requestId: randomUUID(),
    subtype: i % 4 === 0 ? 'read' : 'search-type',
    action: i % 4 === 0 ? 'R' : 'E',
    outcome: i % 50 === 0 ? '4' : '0',
    principal,
    clientIp: '10.0.0.1',
    patients: [nhs],
    entities: i % 4 === 0 ? [{ type: 'ImagingStudy', id: randomUUID(), version: 1 }] : [],
    query: i % 4 === 0 ? undefined : `patient.identifier=https://fhir.nhs.uk/Id/nhs-number|${nhs}`,
  };
}

interface Row extends AuditIndexColumns {
  id: string;
  recorded: string;
  chain: number;
  chain_pos: number;
  hash: string;
  resource: string;
}

const INSERT = `insert into audit_event (id, recorded, chain, chain_pos, hash, patients, agent_ods, agent_user, action, subtype, outcome, purpose, break_glass, resource)
  select id, recorded, chain, chain_pos, decode(hash, 'hex'), patients, agent_ods, agent_user, action, subtype, outcome, purpose, break_glass, resource
    from jsonb_to_recordset($1::jsonb) as x(id text, recorded timestamptz, chain int, chain_pos bigint, hash text, patients text[], agent_ods text, agent_user text,
         action text, subtype text, outcome text, purpose text, break_glass boolean, resource text)
   order by chain, chain_pos`;

async function appendBatch(tx: Queryable, from: number, count: number, start: number, perDay: number): Promise<void> {
  // Lock every head for the batch, so a live writer waits rather than forking a chain.
  const heads = await tx.query<{ chain: number; pos: number; head: Uint8Array }>('select chain, pos, head from audit_chain order by chain for update');
  const state = heads.rows.map((h): { chain: number; pos: number; head: Buffer } => ({ chain: h.chain, pos: Number(h.pos), head: Buffer.from(h.head) }));
  const rows: Row[] = [];
  for (let i = from; i < from + count; i++) {
    const s = state[i % state.length] as (typeof state)[number];
    const r = syntheticRecord(i);
    // `perDay` events a day, ending yesterday, so the review page's chart has a shape.
    const recorded = new Date(start + (i % perDay) * Math.floor(80_000_000 / perDay) + Math.floor(i / perDay) * 86_400_000);
    const { id, ...event } = eventRow(r, recorded);
    s.head = chainHash(s.head, event.resource);
    s.pos += 1;
    rows.push({ id, ...event, chain: s.chain, chain_pos: s.pos, hash: s.head.toString('hex') });
  }
  await tx.query(INSERT, [JSON.stringify(rows)]);
  await tx.query(
    `update audit_chain c set pos = x.pos, head = decode(x.head, 'hex') from jsonb_to_recordset($1::jsonb) as x(chain int, pos bigint, head text) where c.chain = x.chain`,
    [JSON.stringify(state.map((s) => ({ chain: s.chain, pos: s.pos, head: s.head.toString('hex') })))],
  );
}

/** Appends n synthetic events with valid hash chains, in batches of 5,000 (one transaction each). */
export async function insertSyntheticAuditEvents(db: Database, n: number, options: { perDay?: number; onProgress?(done: number): void } = {}): Promise<void> {
  const perDay = options.perDay ?? 10_000;
  const today = new Date();
  // Whole past days, ending yesterday (UTC): nothing is recorded in the future.
  const start = Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), today.getUTCDate()) - Math.ceil(n / perDay) * 86_400_000;
  for (let done = 0; done < n; done += BATCH) {
    const count = Math.min(BATCH, n - done);
    await db.transaction((tx) => appendBatch(tx, done, count, start, perDay));
    options.onProgress?.(done + count);
  }
}

export interface AuditVerifyFigures {
  inserted: number;
  insertSeconds: number;
  verifiedEvents: number;
  verifySeconds: number;
  eventsPerSecond: number;
  ok: boolean;
}

/** bench/run.ts: appends n events, then verifies the whole trail (it also holds the seed's events). */
export async function benchAuditVerify(db: Database, n: number): Promise<AuditVerifyFigures> {
  const t0 = process.hrtime.bigint();
  await insertSyntheticAuditEvents(db, n);
  const insertSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const r = await verifyAuditTrail(db, { concurrency: db.kind === 'postgres' ? 4 : 1 });
  return {
    inserted: n,
    insertSeconds,
    verifiedEvents: r.events,
    verifySeconds: r.ms / 1000,
    eventsPerSecond: r.events / (r.ms / 1000),
    ok: r.ok,
  };
}
