import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AuditRecord } from '../../src/audit/audit-event';
import { buildAuditEvent } from '../../src/audit/audit-event';
import { createAuditWriter, eventRow } from '../../src/audit/audit-store';
import { chainHash } from '../../src/audit/audit-chain';
import { verifyAuditTrail } from '../../src/audit/verify';
import type { VerifyResult } from '../../src/audit/verify';
import { auditVerifyCommand } from '../../src/audit/verify-command';
import type { Database, Queryable, SqlValue } from '../../src/store/database';
import { openDatabase } from '../../src/store/open';
import { PgDatabase } from '../../src/store/pg-database';
import { testDatabase } from '../helpers/db';
import { patient } from '../helpers/fixtures';
import type { Principal } from '../../src/access/principal';

let db: Database;
let drop: () => Promise<void>;
let chain: number;
let length: number;
const EVENTS = 96;

const principal = (i: number): Principal => ({
  subject: `user-${i % 7}`,
  issuer: 'urn:locus:dev-issuer',
  organization: i % 2 ? 'RRK' : 'RJE',
  role: 'clinician',
  scopes: [],
  purposeOfUse: i % 11 === 0 ? 'ETREAT' : 'TREAT',
  breakGlassReason: i % 11 === 0 ? 'Unconscious patient in resus' : undefined,
});

const record = (i: number): AuditRecord => ({
  requestId: `req-${i}`,
  subtype: i % 3 ? 'search-type' : 'read',
  action: i % 3 ? 'E' : 'R',
  outcome: i % 5 ? '0' : '4',
  principal: i % 13 === 0 ? undefined : principal(i),
  claimed: i % 13 === 0 ? { subject: 'forger', organization: 'XXX' } : undefined,
  patients: i % 4 ? [patient(i % 9)] : [],
  entities: [],
  query: `patient.identifier=${patient(i % 9)}`,
});

beforeAll(async () => {
  ({ db, drop } = await testDatabase());
  const writer = createAuditWriter(true);
  for (let i = 0; i < EVENTS; i++) await writer.write(db, record(i));
  const longest = await db.query<{ chain: number; n: number }>('select chain, count(*)::int as n from audit_event group by chain order by n desc, chain limit 1');
  chain = longest.rows[0]!.chain;
  length = longest.rows[0]!.n;
  expect(length).toBeGreaterThanOrEqual(4);
});
afterAll(async () => drop());

/** Tampers inside a transaction (trigger disabled, as an attacker with table rights would), verifies, then rolls back. */
async function tampered(edit: (tx: Queryable) => Promise<void>): Promise<VerifyResult> {
  let result: VerifyResult | undefined;
  await db
    .transaction(async (tx) => {
      await tx.query('alter table audit_event disable trigger user');
      await edit(tx);
      result = await verifyAuditTrail(tx, { batchSize: 7 });
      throw new Error('rollback');
    })
    .catch((e: unknown) => {
      if ((e as Error).message !== 'rollback') throw e;
    });
  return result as VerifyResult;
}

const at = async (q: Queryable, pos: number): Promise<{ seq: number; id: string; hash: Uint8Array }> =>
  (await q.query<{ seq: number; id: string; hash: Uint8Array }>('select seq, id, hash from audit_event where chain = $1 and chain_pos = $2', [chain, pos])).rows[0]!;

async function insertForged(q: Queryable, pos: number, hash: Buffer, text: string, id: string, recorded: Date): Promise<void> {
  await q.query(
    `insert into audit_event (id, recorded, chain, chain_pos, hash, patients, agent_ods, agent_user, action, subtype, outcome, purpose, break_glass, resource)
     values ($1, $2, $3, $4, $5, $6::text[], 'RRK', 'user-1', 'E', 'search-type', '0', 'TREAT', false, $7)`,
    [id, recorded, chain, pos, hash, [patient(1)], text],
  );
}

function forgedText(id: string, recorded: Date): string {
  return eventRow({ ...record(1), principal: principal(1), patients: [patient(1)] }, recorded, id).resource;
}

async function shiftFrom(q: Queryable, pos: number, by: number): Promise<void> {
  await q.query('update audit_event set chain_pos = -chain_pos where chain = $1 and chain_pos >= $2', [chain, pos]);
  await q.query('update audit_event set chain_pos = -chain_pos + $2 where chain = $1 and chain_pos < 0', [chain, by]);
}

describe('an untouched trail', () => {
  it('when nothing was changed, then verify reports OK with the event and chain counts', async () => {
    const r = await verifyAuditTrail(db, { batchSize: 5 });
    expect(r).toMatchObject({ ok: true, events: EVENTS, chains: 16, problems: [] });
  });
});

describe('events written before the stored-facts format (the BALP AuditEvent itself)', () => {
  /** Appends two events in the earlier format to the chain's end, with correct hashes, as an earlier version wrote them. */
  async function appendLegacy(tx: Queryable): Promise<void> {
    const head = (await tx.query<{ pos: number; head: Uint8Array }>('select pos, head from audit_chain where chain = $1', [chain])).rows[0]!;
    let hash: Buffer = Buffer.from(head.head);
    let pos = Number(head.pos);
    for (const i of [1, 2]) {
      const recorded = new Date(Date.now() + i);
      const id = randomUUID();
      const text = JSON.stringify(buildAuditEvent({ ...record(1), principal: principal(1), patients: [patient(1)] }, recorded, id));
      expect(text.startsWith('{"resourceType":"AuditEvent"')).toBe(true);
      hash = chainHash(hash, text);
      pos += 1;
      await insertForged(tx, pos, hash, text, id, recorded);
    }
    await tx.query('update audit_chain set pos = $2, head = $3 where chain = $1', [chain, pos, hash]);
  }

  it('when a trail mixes both formats untouched, then verify reports OK', async () => {
    const r = await tampered(appendLegacy);
    expect(r).toMatchObject({ ok: true, events: EVENTS + 2, problems: [] });
  });

  it('when a column of an earlier-format event is edited, then MODIFIED naming the column', async () => {
    const r = await tampered(async (tx) => {
      await appendLegacy(tx);
      await tx.query(`update audit_event set agent_ods = 'RJE' where chain = $1 and chain_pos = $2`, [chain, length + 1]);
    });
    expect(r.problems).toEqual([expect.objectContaining({ kind: 'modified', chain, position: length + 1, detail: expect.stringMatching(/agent_ods/) })]);
  });
});

describe('the four kinds of tampering, each found at the right place', () => {
  it('when an event text is edited, then MODIFIED at its chain position', async () => {
    const victim = await at(db, 2);
    const r = await tampered((tx) => tx.query(`update audit_event set resource = replace(resource, '"action":', '"action" :') where chain = $1 and chain_pos = 2`, [chain]).then(() => undefined));
    expect(r.ok).toBe(false);
    expect(r.problems).toEqual([expect.objectContaining({ kind: 'modified', chain, position: 2, seq: victim.seq, id: victim.id })]);
  });

  it('when only an indexed column is edited (to hide an event from a user search), then MODIFIED naming the column', async () => {
    const r = await tampered((tx) => tx.query(`update audit_event set agent_user = 'someone-else' where chain = $1 and chain_pos = 3`, [chain]).then(() => undefined));
    expect(r.problems).toEqual([expect.objectContaining({ kind: 'modified', chain, position: 3, detail: expect.stringMatching(/agent_user/) })]);
  });

  it('when the chain head is rewritten, then MODIFIED at the last position', async () => {
    const r = await tampered((tx) => tx.query(`update audit_chain set head = sha256(head) where chain = $1`, [chain]).then(() => undefined));
    expect(r.problems).toEqual([expect.objectContaining({ kind: 'modified', chain, position: length })]);
  });

  it('when an event is deleted, then DELETED at its position', async () => {
    const after = await at(db, 3);
    const r = await tampered((tx) => tx.query('delete from audit_event where chain = $1 and chain_pos = 2', [chain]).then(() => undefined));
    expect(r.problems).toEqual([expect.objectContaining({ kind: 'deleted', chain, position: 2, seq: after.seq })]);
  });

  it('when an event is deleted and the later ones renumbered to close the gap, then still DELETED at that position', async () => {
    const r = await tampered(async (tx) => {
      await tx.query('delete from audit_event where chain = $1 and chain_pos = 2', [chain]);
      await shiftFrom(tx, 3, -1);
    });
    expect(r.problems).toEqual([expect.objectContaining({ kind: 'deleted', chain, position: 2 })]);
  });

  it('when the last event of a chain is deleted, then DELETED past the end', async () => {
    const r = await tampered((tx) => tx.query('delete from audit_event where chain = $1 and chain_pos = $2', [chain, length]).then(() => undefined));
    expect(r.problems).toEqual([expect.objectContaining({ kind: 'deleted', chain, position: length })]);
  });

  it('when a forged event with a correctly computed hash is inserted mid-chain, then INSERTED at its position', async () => {
    const r = await tampered(async (tx) => {
      const one = await at(tx, 1);
      await shiftFrom(tx, 2, 1);
      const id = randomUUID();
      const recorded = new Date();
      const text = forgedText(id, recorded);
      await insertForged(tx, 2, chainHash(one.hash, text), text, id, recorded);
    });
    expect(r.problems).toEqual([expect.objectContaining({ kind: 'inserted', chain, position: 2 })]);
  });

  it('when a forged event with a junk hash is inserted mid-chain, then INSERTED at its position', async () => {
    const id = randomUUID();
    const r = await tampered(async (tx) => {
      await shiftFrom(tx, 3, 1);
      const recorded = new Date();
      await insertForged(tx, 3, Buffer.alloc(32, 7), forgedText(id, recorded), id, recorded);
    });
    expect(r.problems).toEqual([expect.objectContaining({ kind: 'inserted', chain, position: 3, id })]);
  });

  it('when a correctly hashed event is appended without moving the chain head, then INSERTED past the head', async () => {
    const id = randomUUID();
    const r = await tampered(async (tx) => {
      const last = await at(tx, length);
      const recorded = new Date();
      const text = forgedText(id, recorded);
      await insertForged(tx, length + 1, chainHash(last.hash, text), text, id, recorded);
    });
    expect(r.problems).toEqual([expect.objectContaining({ kind: 'inserted', chain, position: length + 1, id })]);
  });

  it('when two events swap places, then REORDERED at the first of them', async () => {
    const r = await tampered(async (tx) => {
      await tx.query('update audit_event set chain_pos = -2 where chain = $1 and chain_pos = 2', [chain]);
      await tx.query('update audit_event set chain_pos = 2 where chain = $1 and chain_pos = 3', [chain]);
      await tx.query('update audit_event set chain_pos = 3 where chain = $1 and chain_pos = -2', [chain]);
    });
    expect(r.problems).toEqual([expect.objectContaining({ kind: 'reordered', chain, position: 2 })]);
  });

  it('when sequence numbers are swapped to change the order a review shows, then REORDERED', async () => {
    const r = await tampered(async (tx) => {
      const two = await at(tx, 2);
      const three = await at(tx, 3);
      await tx.query('update audit_event set seq = -1 where seq = $1', [two.seq]);
      await tx.query('update audit_event set seq = $1 where seq = $2', [two.seq, three.seq]);
      await tx.query('update audit_event set seq = $1 where seq = -1', [three.seq]);
    });
    expect(r.problems).toEqual([expect.objectContaining({ kind: 'reordered', chain, position: 3 })]);
  });
});

describe('locus audit verify', () => {
  const lines: string[] = [];
  const io = { out: (l: string) => lines.push(l), err: (l: string) => lines.push(l) };
  const borrowed = (q: Database): (() => Promise<Database>) => async () => ({ ...q, kind: q.kind, query: q.query.bind(q), transaction: q.transaction.bind(q), exec: q.exec.bind(q), close: async () => undefined });

  it('when the trail is intact, then it prints OK with counts and exits 0', async () => {
    lines.length = 0;
    expect(await auditVerifyCommand(borrowed(db)).run([], io)).toBe(0);
    expect(lines).toEqual([expect.stringMatching(new RegExp(`^OK: ${EVENTS} audit events in 16 chains verified`))]);
  });

  it('when an event was modified, then it prints the chain, position, seq and kind, and exits 1', async () => {
    lines.length = 0;
    const victim = await at(db, 2);
    let code = -1;
    await db
      .transaction(async (tx) => {
        await tx.query('alter table audit_event disable trigger user');
        await tx.query(`update audit_event set resource = replace(resource, '"outcome":', '"outcome" :') where chain = $1 and chain_pos = 2`, [chain]);
        const inTx = { kind: db.kind, query: tx.query, transaction: db.transaction.bind(db), exec: db.exec.bind(db), close: async () => undefined } as Database;
        code = await auditVerifyCommand(async () => inTx).run(['--concurrency', '1'], io);
        throw new Error('rollback');
      })
      .catch(() => undefined);
    expect(code).toBe(1);
    expect(lines[0]).toMatch(/^TAMPERED: 1 of 16 chains are broken/);
    expect(lines[1]).toBe(`MODIFIED: chain ${chain}, position 2, seq ${victim.seq}, event ${victim.id}: the event at position 2 does not match its hash`);
  });

  it('when --concurrency is not a number, then exit 2', async () => {
    expect(await auditVerifyCommand(borrowed(db)).run(['--concurrency', 'lots'], io)).toBe(2);
  });
});

describe('npx locus audit verify, as a process', () => {
  it('when run against a database, then OK and exit 0; after an edit, the break and exit 1', async () => {
    const url = process.env.DATABASE_URL;
    const dir = mkdtempSync(join(tmpdir(), 'locus-verify-'));
    const schema = `v_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
    let env: NodeJS.ProcessEnv;
    let own: Database;
    if (url) {
      const admin = new PgDatabase(url, { max: 1 });
      await admin.exec(`create schema ${schema}`);
      await admin.close();
      own = await openDatabase({ databaseUrl: url, searchPath: schema });
      env = { ...process.env, DATABASE_URL: `${url}${url.includes('?') ? '&' : '?'}options=${encodeURIComponent(`-c search_path=${schema}`)}` };
    } else {
      own = await openDatabase({ dataDir: dir });
      env = { ...process.env, LOCUS_DATA_DIR: dir };
    }
    const run = (): Promise<{ code: number; out: string }> =>
      new Promise((resolve) => {
        execFile(process.execPath, ['bin/locus.js', 'audit', 'verify'], { env, cwd: join(__dirname, '../..') }, (err, stdout) => resolve({ code: err ? Number(err.code) : 0, out: stdout }));
      });
    try {
      const writer = createAuditWriter(true);
      for (let i = 0; i < 20; i++) await writer.write(own, record(i));
      const victim = (await own.query<{ chain: number; chain_pos: number; seq: number }>('select chain, chain_pos, seq from audit_event order by seq limit 1')).rows[0]!;
      if (!url) await own.close();
      const clean = await run();
      expect(clean).toEqual({ code: 0, out: expect.stringMatching(/^OK: 20 audit events in 16 chains verified/) });
      if (!url) own = await openDatabase({ dataDir: dir });
      await own.exec('alter table audit_event disable trigger user');
      await own.query('delete from audit_event where seq = $1', [victim.seq]);
      if (!url) await own.close();
      const broken = await run();
      expect(broken.code).toBe(1);
      expect(broken.out).toContain(`DELETED: chain ${victim.chain}, position ${victim.chain_pos}`);
    } finally {
      if (url) {
        await own.close();
        const admin = new PgDatabase(url, { max: 1 });
        await admin.exec(`drop schema ${schema} cascade`);
        await admin.close();
      }
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});

describe('grouped appends under concurrency', () => {
  it('when 300 reads are audited at once, then they share statements, every chain stays valid and seq rises along each chain', async () => {
    const writer = createAuditWriter(true);
    let statements = 0;
    const counting = Object.assign(Object.create(Object.getPrototypeOf(db)) as Database, db, {
      query: (sql: string, params?: readonly SqlValue[]) => {
        statements++;
        return db.query(sql, params);
      },
    });
    await Promise.all(Array.from({ length: 300 }, (_, i) => writer.write(counting, record(1000 + i))));
    expect(statements).toBeLessThan(300);
    const r = await verifyAuditTrail(db);
    expect(r).toMatchObject({ ok: true, events: EVENTS + 300 });
  });
});

describe('appends from several nodes', () => {
  it('when two writers (two API nodes, each remembering chain heads) append at once and a write transaction rolls back its event, then no event is lost or duplicated and every chain verifies', async () => {
    const nodeA = createAuditWriter(true);
    const nodeB = createAuditWriter(true);
    const before = (await db.query<{ n: number }>('select count(*)::int as n from audit_event')).rows[0]!.n;
    // Node A's memory moves ahead of the database: its transaction's append rolls back.
    await expect(
      db.transaction(async (tx) => {
        await nodeA.write(tx, record(5000));
        throw new Error('the pointer write failed');
      }),
    ).rejects.toThrow('the pointer write failed');
    // One at a time, alternating: each node keeps finding chains the other has moved since.
    for (let i = 0; i < 100; i++) await (i % 2 === 0 ? nodeA : nodeB).write(db, record(6000 + i));
    // And all at once.
    await Promise.all(Array.from({ length: 100 }, (_, i) => (i % 2 === 0 ? nodeA : nodeB).write(db, record(6100 + i))));
    await db.transaction(async (tx) => nodeB.write(tx, record(7000)));
    const after = (await db.query<{ n: number; ids: number }>('select count(*)::int as n, count(distinct id)::int as ids from audit_event')).rows[0]!;
    expect(after).toEqual({ n: before + 201, ids: before + 201 });
    const r = await verifyAuditTrail(db);
    expect(r.problems).toEqual([]);
    expect(r.events).toBe(before + 201);
  });
});

