import request from 'supertest';
import { DEMO_PATIENTS, aConsent } from '../src/demo/seed';
import { startTestServer } from './helpers/server';
import type { TestServer } from './helpers/server';
import { aStudy, get, patient, post } from './helpers/fixtures';

let s: TestServer;
beforeAll(async () => {
  s = await startTestServer({ demo: true });
});
afterAll(async () => s.close());

const REASON = 'Unconscious patient in ED, prior imaging needed';

/** [caller, purpose, patient, custodians expected visible] — every sharing rule, from the demo network. */
const CASES: [string, 'TREAT' | 'ETREAT', keyof typeof DEMO_PATIENTS, string[]][] = [
  ['RJE', 'TREAT', 'shared', ['RJE', 'RL4', 'RRK']], // network trusts share by default; the custodian sees its own
  ['XIP01', 'TREAT', 'shared', ['RJE', 'RL4', 'RRK']], // independent provider under an agreement
  ['W9Z01', 'TREAT', 'shared', []], // Welsh board without an agreement
  ['W9Z01', 'ETREAT', 'shared', []], // break-glass never reaches organisations with no agreement at all
  ['RJE', 'TREAT', 'optedOut', []], // patient opted out of sharing beyond the custodian
  ['RXK', 'TREAT', 'optedOut', ['RXK']], // the custodian always sees its own
  ['RJE', 'ETREAT', 'optedOut', ['RXK']], // break-glass reveals what the opt-out withheld
  ['RJE', 'TREAT', 'denied', []], // patient denied RJE by name
  ['RL4', 'TREAT', 'denied', ['RNA']], // ... but not RL4
  ['RL4', 'TREAT', 'restricted', []], // restricted (R) pointer: custodian only
  ['RRK', 'TREAT', 'restricted', ['RRK']],
  ['RL4', 'ETREAT', 'restricted', ['RRK']],
];

async function tokenOf(caller: string, purpose: string): Promise<string> {
  return s.tokenFor(caller, 'clinician', purpose === 'ETREAT' ? { purposeOfUse: 'ETREAT', breakGlassReason: REASON } : {});
}

async function allStudies(nhs: string): Promise<{ id: string; custodian_ods: string }[]> {
  return (await s.db.query<{ id: string; custodian_ods: string }>('select id, custodian_ods from imaging_study where patient_nhs = $1', [nhs])).rows;
}

describe.each(CASES)('when %s (%s) looks for the %s patient', (caller, purpose, who, expected) => {
  const nhs = (): string => DEMO_PATIENTS[who];

  it(`then search returns exactly ${expected.join(', ') || 'nothing'}, with a matching total and count`, async () => {
    const token = await tokenOf(caller, purpose);
    const res = await get(s, token, `/fhir/ImagingStudy?patient.identifier=${nhs()}&_total=accurate&_include=ImagingStudy:endpoint`);
    expect(res.status).toBe(200);
    const matches = (res.body.entry ?? []).filter((e: { search: { mode: string } }) => e.search.mode === 'match');
    const visible = new Set(matches.map((e: { resource: { id: string } }) => e.resource.id));
    const expectedIds = (await allStudies(nhs())).filter((r) => expected.includes(r.custodian_ods)).map((r) => r.id);
    expect([...visible].sort()).toEqual(expectedIds.sort());
    expect(res.body.total).toBe(expected.length);
    const includes = (res.body.entry ?? []).filter((e: { search: { mode: string } }) => e.search.mode === 'include');
    expect(includes.length).toBeLessThanOrEqual(expected.length);
    const count = await get(s, token, `/fhir/ImagingStudy?patient.identifier=${nhs()}&_summary=count`);
    expect(count.body.total).toBe(expected.length);
    const docs = await get(s, token, `/fhir/DocumentReference?patient.identifier=${nhs()}`);
    for (const e of docs.body.entry ?? []) if (e.search.mode === 'match') expect(expected).toContain(e.resource.custodian.identifier.value);
  });

  it('then read, vread, _history and batch reads answer 200 for visible pointers and 404 for withheld ones', async () => {
    const token = await tokenOf(caller, purpose);
    for (const row of await allStudies(nhs())) {
      const want = expected.includes(row.custodian_ods) ? 200 : 404;
      expect((await get(s, token, `/fhir/ImagingStudy/${row.id}`)).status).toBe(want);
      expect((await get(s, token, `/fhir/ImagingStudy/${row.id}/_history/1`)).status).toBe(want);
      expect((await get(s, token, `/fhir/ImagingStudy/${row.id}/_history`)).status).toBe(want);
      const batch = await post(s, token, '/fhir', { resourceType: 'Bundle', type: 'batch', entry: [{ request: { method: 'GET', url: `ImagingStudy/${row.id}` } }] });
      expect(batch.body.entry[0].response.status).toBe(String(want === 200 ? '200 OK' : 404));
    }
  });
});

describe('the break-glass notice', () => {
  it('when results were withheld that break-glass could reveal, then one warning without a count; none when nothing is withheld', async () => {
    const token = await tokenOf('RJE', 'TREAT');
    const res = await get(s, token, `/fhir/ImagingStudy?patient.identifier=${DEMO_PATIENTS.optedOut}`);
    const outcomes = res.body.entry.filter((e: { search: { mode: string } }) => e.search.mode === 'outcome');
    expect(outcomes).toHaveLength(1);
    expect(outcomes[0].resource.issue[0].diagnostics).toMatch(/break-glass/);
    expect(outcomes[0].resource.issue[0].diagnostics).not.toMatch(/\d/);
    const open = await get(s, token, `/fhir/ImagingStudy?patient.identifier=${DEMO_PATIENTS.shared}`);
    expect((open.body.entry ?? []).filter((e: { search: { mode: string } }) => e.search.mode === 'outcome')).toHaveLength(0);
    const wales = await get(s, await tokenOf('W9Z01', 'TREAT'), `/fhir/ImagingStudy?patient.identifier=${DEMO_PATIENTS.shared}`);
    expect(wales.body.entry).toBeUndefined();
  });

  it('when break-glass is used, then the access is flagged in the audit trail', async () => {
    await get(s, await tokenOf('RJE', 'ETREAT'), `/fhir/ImagingStudy?patient.identifier=${DEMO_PATIENTS.optedOut}`);
    const r = await s.db.query<{ n: number }>("select count(*)::int as n from audit_event where break_glass and agent_ods = 'RJE' and $1 = any(patients)", [DEMO_PATIENTS.optedOut]);
    expect(r.rows[0]?.n).toBeGreaterThanOrEqual(1);
  });

  it('when ETREAT comes without a reason of 10 characters, then it is not break-glass', async () => {
    const token = await s.tokenFor('RJE', 'clinician', { purposeOfUse: 'ETREAT', breakGlassReason: 'short' });
    const res = await get(s, token, `/fhir/ImagingStudy?patient.identifier=${DEMO_PATIENTS.optedOut}`);
    expect((res.body.entry ?? []).filter((e: { search: { mode: string } }) => e.search.mode === 'match')).toHaveLength(0);
    const viaHeader = await request(s.baseUrl).get(`/fhir/ImagingStudy?patient.identifier=${DEMO_PATIENTS.optedOut}`).set('authorization', `Bearer ${await s.tokenFor('RJE', 'clinician', { purposeOfUse: 'ETREAT' })}`).set('x-break-glass-reason', REASON);
    expect(viaHeader.body.entry.filter((e: { search: { mode: string } }) => e.search.mode === 'match')).toHaveLength(1);
  });
});

describe('withheld pointers and paging', () => {
  /** Publishes studies for a fresh patient, newest first in `plan`: [custodian, restricted?]. */
  async function publish(nhs: string, plan: [string, boolean][]): Promise<Map<string, string>> {
    const custodianOf = new Map<string, string>();
    for (const [k, [ods, restricted]] of plan.entries()) {
      const ep = (await s.db.query<{ id: string }>("select id from endpoint where managing_ods = $1 and connection_type = 'dicom-wado-rs' limit 1", [ods])).rows[0]!.id;
      const started = new Date(Date.UTC(2025, 0, 28 - k)).toISOString();
      const res = await post(s, await s.tokenFor(ods, 'publisher'), '/fhir/ImagingStudy', aStudy({ nhs, endpointId: ep, started, ...(restricted ? { security: 'R' } : {}) }));
      expect(res.status).toBe(201);
      custodianOf.set(res.body.id, ods);
    }
    return custodianOf;
  }

  /** Follows next links from the first page; every page's ids, and whether each carried the notice. */
  async function walk(token: string, nhs: string, count: number): Promise<{ pages: string[][]; notices: boolean[] }> {
    const pages: string[][] = [];
    const notices: boolean[] = [];
    let url: string | undefined = `/fhir/ImagingStudy?patient.identifier=${nhs}&_count=${count}`;
    while (url) {
      const res = await get(s, token, url);
      expect(res.status).toBe(200);
      const entries = (res.body.entry ?? []) as { search: { mode: string }; resource: { id: string } }[];
      pages.push(entries.filter((e) => e.search.mode === 'match').map((e) => e.resource.id));
      notices.push(entries.some((e) => e.search.mode === 'outcome'));
      const next = (res.body.link as { relation: string; url: string }[]).find((l) => l.relation === 'next')?.url;
      url = next ? next.slice(s.baseUrl.length) : undefined;
      expect(pages.length).toBeLessThan(10);
    }
    return { pages, notices };
  }

  it.each([
    ['a withheld pointer takes a place in the first scan', [['RRK', true], ['RJE', false], ['RL4', false], ['RRK', false], ['RJE', false]]],
    ['the withheld pointer lies past a full first page', [['RJE', false], ['RL4', false], ['RRK', false], ['RJE', false], ['RRK', true]]],
    ['nothing is withheld and there is more than one page', [['RJE', false], ['RL4', false], ['RRK', false], ['RJE', false], ['RRK', false]]],
  ] as [string, [string, boolean][]][])('when %s, then pages are full, every visible pointer appears once, and the notice is there exactly when something was withheld', async (_what, plan) => {
    const nhs = patient(9000 + Math.floor(Math.random() * 900));
    const custodianOf = await publish(nhs, plan);
    const anyWithheld = plan.some(([ods, restricted]) => restricted && ods !== 'RL4');
    const { pages, notices } = await walk(await tokenOf('RL4', 'TREAT'), nhs, 2);
    const expected = [...custodianOf.keys()].filter((id, k) => !plan[k]![1] || custodianOf.get(id) === 'RL4');
    expect(pages.flat()).toEqual(expected);
    expect(pages.slice(0, -1).every((p) => p.length === 2)).toBe(true);
    expect(notices).toEqual(pages.map(() => anyWithheld));
  });
});

describe('Consent resources', () => {
  it('when an organisation with a Consent scope records an opt-out, then other trusts stop seeing the patient at once', async () => {
    const token = await tokenOf('RL4', 'TREAT');
    const before = await get(s, token, `/fhir/ImagingStudy?patient.identifier=${DEMO_PATIENTS.shared}`);
    expect(before.body.entry.length).toBeGreaterThan(0);
    const writer = await s.tokenFor('RRK', 'publisher', { scope: 'system/Consent.cruds' });
    const created = await post(s, writer, '/fhir/Consent', aConsent(DEMO_PATIENTS.shared, ['RL4'], 'RRK'));
    expect(created.status).toBe(201);
    const after = await get(s, token, `/fhir/ImagingStudy?patient.identifier=${DEMO_PATIENTS.shared}`);
    const custodians = after.body.entry.filter((e: { search: { mode: string } }) => e.search.mode === 'match').map((e: { resource: { endpoint: unknown } }) => e.resource);
    expect(custodians).toHaveLength(1); // RL4's own copy only
    // A page with results can still have had others withheld: the notice says so.
    expect(after.body.entry.filter((e: { search: { mode: string } }) => e.search.mode === 'outcome')).toHaveLength(1);
    const withdraw = await request(s.baseUrl).delete(`/fhir/Consent/${created.body.id}`).set('authorization', `Bearer ${writer}`);
    expect(withdraw.status).toBe(200);
    const again = await get(s, token, `/fhir/ImagingStudy?patient.identifier=${DEMO_PATIENTS.shared}`);
    expect(again.body.entry.filter((e: { search: { mode: string } }) => e.search.mode === 'match')).toHaveLength(3);
  });

  it('when a clinician without a Consent scope tries to write one, then 403', async () => {
    const res = await post(s, await tokenOf('RJE', 'TREAT'), '/fhir/Consent', aConsent(DEMO_PATIENTS.shared, [], 'RJE'));
    expect(res.status).toBe(403);
  });
});
