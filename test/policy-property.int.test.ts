import type { Principal } from '../src/access/principal';
import { parseScopes } from '../src/access/principal';
import { networkPolicy } from '../src/access/network-policy';
import type { Agreement, PolicyPrincipal } from '../src/access/policy-rules';
import { decide } from '../src/access/policy-rules';
import type { DenyRule } from '../src/registry/consent';
import type { OrganizationKind } from '../src/registry/organization';
import { testNhsNumber } from '../src/registry/nhs-number';
import type { Database, Queryable } from '../src/store/database';
import { documentReferenceDef } from '../src/registry/resource-types';
import { searchResources } from '../src/registry/search';
import { SqlBuilder } from '../src/store/sql-builder';
import { testDatabase } from './helpers/db';

// A small deterministic generator (mulberry32) so a failure can be replayed.
function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ORGS: { ods: string; kind: OrganizationKind }[] = [
  { ods: 'RRK', kind: 'network-trust' },
  { ods: 'RJE', kind: 'network-trust' },
  { ods: 'RL4', kind: 'network-trust' },
  { ods: 'XIP01', kind: 'independent-provider' },
  { ods: 'W9Z01', kind: 'wales' },
];
const NOW = new Date('2026-06-01T12:00:00Z');
const CATS = ['103693007', '721981007'];
const PERIODS: [string | null, string | null][] = [[null, null], ['2026-01-01T00:00:00Z', null], ['2026-01-01T00:00:00Z', '2026-03-01T00:00:00Z'], ['2027-01-01T00:00:00Z', null]];

let db: Database;
let drop: () => Promise<void>;
beforeAll(async () => {
  ({ db, drop } = await testDatabase());
  for (const o of ORGS) {
    await db.query(`insert into organization (id, version, last_updated, ods, name_lower, kind, active, identifiers, resource) values ($1, 1, now(), $1, $1, $2, true, '{}', '{}')`, [o.ods, o.kind]);
  }
});
afterAll(async () => drop());

describe('the SQL policy predicate and the pure decision agree', () => {
  it('when 60 random worlds of consents, agreements, labels and callers are generated, then both SQL forms and decide() give the same answer for every pointer', async () => {
    const random = rng(20261123);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)] as T;
    let compared = 0;
    let quickScans = 0;
    let shownRows = 0;
    for (let world = 0; world < 60; world++) {
      await db.exec('delete from document_reference; delete from consent; delete from sharing_agreement;');
      const agreements: Agreement[] = [];
      for (let i = 0; i < 3; i++) {
        const [start, end] = pick(PERIODS);
        const a: Agreement = { provider: pick(ORGS).ods, recipient: pick(ORGS).ods, categories: random() < 0.5 ? [] : [pick(CATS)], start: new Date(start ?? '2020-01-01T00:00:00Z'), end: end ? new Date(end) : null };
        agreements.push(a);
        await db.query('insert into sharing_agreement (id, provider_ods, recipient_ods, categories, period_start, period_end, description) values ($1, $2, $3, $4, $5, $6, $7)', [`a${i}`, a.provider, a.recipient, a.categories, a.start, a.end, 'generated']);
      }
      const patients = [testNhsNumber(1), testNhsNumber(2)];
      const consents = new Map<string, DenyRule[]>();
      const consented = new Set<string>();
      for (const nhs of patients) {
        const rules: DenyRule[] = random() < 0.5 ? [] : [{ orgs: random() < 0.5 ? [] : [pick(ORGS).ods], categories: random() < 0.5 ? [] : [pick(CATS)], start: pick(PERIODS)[0], end: pick(PERIODS)[1] }];
        consents.set(nhs, rules);
        // Some patients have no Consent at all (the common case, and the one the quick scan serves).
        if (rules.length === 0 && random() < 0.5) continue;
        consented.add(nhs);
        await db.query(`insert into consent (id, version, last_updated, patient_nhs, custodian_ods, status, rules, resource) values ($1, 1, now(), $2, null, 'active', $3::jsonb, '{}')`, [`c${nhs}`, nhs, JSON.stringify(rules)]);
      }
      const pointers = Array.from({ length: 8 }, (_, i) => ({
        id: `p${i}`,
        custodian: pick(ORGS).ods,
        nhs: pick(patients),
        category: pick(CATS),
        security: random() < 0.25 ? ['http://terminology.hl7.org/CodeSystem/v3-Confidentiality|R'] : [],
      }));
      for (const p of pointers) {
        await db.query(
          `insert into document_reference (id, version, last_updated, patient_nhs, custodian_ods, master_identifier, identifiers, types, categories, settings, date, status, related, modalities, security, resource)
           values ($1, 1, now(), $2, $3, $1, '{}', '{}', $4, '{}', now(), 'current', '{}', '{}', $5, '{}')`,
          [p.id, p.nhs, p.custodian, [`http://snomed.info/sct|${p.category}`], p.security],
        );
      }
      const withSnapshot = networkPolicy(db, { refreshMs: 0 });
      await withSnapshot.refresh();
      for (const [policyName, policy] of [['in-SQL lookups', networkPolicy()], ['directory snapshot', withSnapshot]] as const) {
      for (const caller of ORGS) {
        for (const breakGlass of [false, true]) {
          const principal: Principal = { subject: 'u', issuer: 'i', organization: caller.ods, role: 'clinician', scopes: parseScopes('user/*.rs'), purposeOfUse: breakGlass ? 'ETREAT' : pick(['TREAT', 'TREAT', 'HRESCH']), ...(breakGlass ? { breakGlassReason: 'unconscious patient in ED' } : {}) };
          const b = new SqlBuilder();
          const where = policy.visible(principal, 't', 'DocumentReference', b, NOW);
          const sqlVisible = new Set((await db.query<{ id: string }>(`select t.id from document_reference t where ${where}`, b.params)).rows.map((r) => r.id));
          // The one-patient form (consents checked once per query) must agree with the per-row form.
          const pinned = new Set<string>();
          for (const nhs of patients) {
            const pb = new SqlBuilder();
            const pinnedWhere = `t.patient_nhs = ${pb.param(nhs)} and ${policy.visible(principal, 't', 'DocumentReference', pb, NOW, nhs)}`;
            for (const r of (await db.query<{ id: string }>(`select t.id from document_reference t where ${pinnedWhere}`, pb.params)).rows) pinned.add(r.id);
          }
          expect([...pinned].sort()).toEqual([...sqlVisible].sort());
          // What break-glass could reveal (the searchset notice), per row and pinned, and the reach that scans both.
          const revealable = new Set<string>();
          const reach = new Set<string>();
          for (const nhs of patients) {
            const rb = new SqlBuilder();
            const r = policy.revealableByBreakGlass?.(principal, 't', 'DocumentReference', rb, NOW, nhs);
            if (r) for (const row of (await db.query<{ id: string }>(`select t.id from document_reference t where t.patient_nhs = ${rb.param(nhs)} and ${r}`, rb.params)).rows) revealable.add(row.id);
            const xb = new SqlBuilder();
            const x = policy.reach?.(principal, 't', 'DocumentReference', xb, NOW) as string;
            const reachOfPatient = (await db.query<{ id: string }>(`select t.id from document_reference t where t.patient_nhs = ${xb.param(nhs)} and ${x}`, xb.params)).rows.map((row) => row.id);
            for (const id of reachOfPatient) reach.add(id);
            // The quick scan: the same reach, and `shown` only for visible rows, for every row of a patient
            // with no Consent and no labelled pointer.
            const qb = new SqlBuilder();
            const quick = policy.quickReach?.(principal, 't', 'DocumentReference', qb, NOW, nhs);
            if (quick) {
              quickScans++;
              const rows = (await db.query<{ id: string; shown: boolean }>(`select t.id, ${quick.shown} as shown from document_reference t where t.patient_nhs = ${qb.param(nhs)} and ${quick.reach}`, qb.params)).rows;
              expect(rows.map((r) => r.id).sort()).toEqual([...reachOfPatient].sort());
              const plain = !consented.has(nhs);
              for (const r of rows) {
                const p = pointers.find((ptr) => ptr.id === r.id) as (typeof pointers)[number];
                if (r.shown) shownRows++;
                expect({ world, caller: caller.ods, pointer: r.id, shown: r.shown, visibleIfShown: r.shown ? sqlVisible.has(r.id) : true }).toEqual({
                  world, caller: caller.ods, pointer: r.id, shown: plain && p.security.length === 0 ? true : r.shown, visibleIfShown: true,
                });
              }
            }
          }
          const rb = new SqlBuilder();
          const perRow = policy.revealableByBreakGlass?.(principal, 't', 'DocumentReference', rb, NOW);
          const revealablePerRow = new Set(perRow ? (await db.query<{ id: string }>(`select t.id from document_reference t where ${perRow}`, rb.params)).rows.map((r) => r.id) : []);
          expect([...revealablePerRow].sort()).toEqual([...revealable].sort());
          expect([...reach].sort()).toEqual([...new Set([...sqlVisible, ...revealable])].sort());
          const pp: PolicyPrincipal = { org: caller.ods, orgKind: caller.kind, purposeOfUse: principal.purposeOfUse, breakGlass };
          for (const p of pointers) {
            const d = decide(pp, { custodian: p.custodian, custodianKind: ORGS.find((o) => o.ods === p.custodian)?.kind, category: p.category, security: p.security }, consents.get(p.nhs) ?? [], agreements, NOW);
            expect({ policyName, world, caller: caller.ods, breakGlass, pointer: p, visible: sqlVisible.has(p.id), revealable: revealable.has(p.id) }).toEqual({
              policyName, world, caller: caller.ods, breakGlass, pointer: p, visible: d === 'permit', revealable: d === 'deny-break-glass-would-permit',
            });
            compared++;
          }
        }
      }
      }
    }
    expect(compared).toBe(2 * 60 * ORGS.length * 2 * 8);
    // The generated worlds exercise the quick scan, and it shows rows (it is not vacuously sound).
    expect(quickScans).toBeGreaterThan(50);
    expect(shownRows).toBeGreaterThan(100);
  });
});

describe('a patient search takes the quick scan when it can', () => {
  it('when the patient has no Consent and no labelled pointer, then one statement without the deny-rule test answers; with a Consent, the exact scan decides', async () => {
    await db.exec('delete from document_reference; delete from consent; delete from sharing_agreement;');
    const nhs = testNhsNumber(3);
    for (const [i, custodian] of ['RRK', 'RJE', 'RL4', 'XIP01'].entries()) {
      await db.query(
        `insert into document_reference (id, version, last_updated, patient_nhs, custodian_ods, master_identifier, identifiers, types, categories, settings, date, status, related, modalities, security, resource)
         values ($1, 1, now(), $2, $3, $1, '{}', '{}', $4, '{}', now() - make_interval(days => $5), 'current', '{}', '{}', '{}', '{"resourceType":"DocumentReference"}')`,
        [`q${i}`, nhs, custodian, [`http://snomed.info/sct|${CATS[0] as string}`], i],
      );
    }
    const policy = networkPolicy(db, { refreshMs: 0 });
    await policy.refresh();
    const statements: string[] = [];
    const q: Queryable = { query: (sql, params) => { statements.push(sql); return db.query(sql, params); } };
    const principal: Principal = { subject: 'u', issuer: 'i', organization: 'RJE', role: 'clinician', scopes: parseScopes('user/*.rs'), purposeOfUse: 'TREAT' };
    const search = async (): Promise<{ ids: string[]; withheld?: boolean }> => {
      statements.length = 0;
      const r = await searchResources(q, { def: documentReferenceDef, params: [['patient.identifier', `https://fhir.nhs.uk/Id/nhs-number|${nhs}`]], strict: true, principal, policy, fhirBase: 'http://x/fhir', maxPageSize: 100, defaultPageSize: 20, now: NOW });
      return { ids: r.returned.map((x) => x.id).sort(), withheld: r.withheld };
    };

    expect(await search()).toEqual({ ids: ['q0', 'q1', 'q2'], withheld: false });
    expect(statements).toHaveLength(1);
    expect(statements[0]).not.toContain('consent_rules_deny');
    expect(statements[0]).toContain(`'{"RJE","RL4","RRK"}'::text[]`); // the reach as a constant list

    // A Consent that denies nothing to RJE: the quick scan cannot tell, so the exact scan runs and shows all.
    await db.query(`insert into consent (id, version, last_updated, patient_nhs, custodian_ods, status, rules, resource) values ('c1', 1, now(), $1, null, 'active', $2::jsonb, '{}')`, [nhs, JSON.stringify([{ orgs: ['RL4'], categories: [], start: null, end: null }])]);
    expect(await search()).toEqual({ ids: ['q0', 'q1', 'q2'], withheld: false });
    expect(statements).toHaveLength(2);
    expect(statements[1]).toContain('consent_rules_deny');

    // One that denies RJE: its own pointer stays, the others are withheld, and break-glass could reveal them.
    await db.query(`update consent set rules = $1::jsonb where id = 'c1'`, [JSON.stringify([{ orgs: ['RJE'], categories: [], start: null, end: null }])]);
    expect(await search()).toEqual({ ids: ['q1'], withheld: true });
    policy.close();
  });
});

describe('custodian lists in the SQL text', () => {
  it('when every code in the directory is an ODS code, then the lists are constants; when one is not, then they are bound and the query still answers correctly', async () => {
    await db.exec('delete from document_reference; delete from consent; delete from sharing_agreement;');
    const nhs = testNhsNumber(4);
    const insertPointer = (id: string, custodian: string): Promise<unknown> =>
      db.query(
        `insert into document_reference (id, version, last_updated, patient_nhs, custodian_ods, master_identifier, identifiers, types, categories, settings, date, status, related, modalities, security, resource)
         values ($1, 1, now(), $2, $3, $1, '{}', '{}', '{}', '{}', now(), 'current', '{}', '{}', '{}', '{}')`,
        [id, nhs, custodian],
      );
    await insertPointer('k1', 'RJE');
    const principal: Principal = { subject: 'u', issuer: 'i', organization: 'RRK', role: 'clinician', scopes: parseScopes('user/*.rs'), purposeOfUse: 'TREAT' };
    const visibleSql = async (): Promise<{ sql: string; ids: string[] }> => {
      const policy = networkPolicy(db, { refreshMs: 0 });
      await policy.refresh();
      const b = new SqlBuilder();
      const sql = `select t.id from document_reference t where t.patient_nhs = ${b.param(nhs)} and ${policy.visible(principal, 't', 'DocumentReference', b, NOW)} order by t.id`;
      policy.close();
      return { sql, ids: (await db.query<{ id: string }>(sql, b.params)).rows.map((r) => r.id) };
    };
    const constant = await visibleSql();
    expect(constant.sql).toContain(`'{"RJE","RL4","RRK"}'::text[]`);
    expect(constant.ids).toEqual(['k1']);

    // A code that is no ODS code (written past the API's validation) could end a literal: bound instead.
    const odd = "R'); drop table consent; --";
    await db.query(`insert into organization (id, version, last_updated, ods, name_lower, kind, active, identifiers, resource) values ('odd', 1, now(), $1, 'odd', 'network-trust', true, '{}', '{}')`, [odd]);
    try {
      await insertPointer('k2', odd);
      const bound = await visibleSql();
      expect(bound.sql).not.toContain(odd);
      expect(bound.sql).toMatch(/custodian_ods = any\(\$\d+::text\[\]\)/);
      expect(bound.ids).toEqual(['k1', 'k2']);
      expect((await db.query<{ n: number }>('select count(*)::int as n from consent')).rows[0]?.n).toBe(0);
    } finally {
      await db.query(`delete from organization where id = 'odd'`);
    }
  });
});
