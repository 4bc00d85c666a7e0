import type { StoredAuditEvent } from '../../src/audit/audit-event';
import { balpAuditEvent } from '../../src/audit/audit-event';
import request from 'supertest';
import { startTestServer } from '../helpers/server';
import type { TestServer } from '../helpers/server';
import { NHS, aStudy, get, patient, post, registerNetwork, spineCode } from '../helpers/fixtures';
import { DEV_ISSUER } from '../../src/access/dev-issuer';

let s: TestServer;
let auditor: string;
const P1 = patient(101);
const P2 = patient(102);
const search = (nhs: string): string => `/fhir/ImagingStudy?patient.identifier=${NHS}|${nhs}`;

interface Entry {
  resource: { resourceType: string; id: string; recorded: string; outcome: string; action: string; agent: { who: { identifier?: { value: string } } }[]; entity: { what?: { identifier?: { value: string } } }[]; meta: { security?: { code: string }[] } };
}
const entries = (res: request.Response): Entry[] => (res.body.entry ?? []) as Entry[];
const users = (res: request.Response): string[] => entries(res).map((e) => e.resource.agent.find((a) => a.who.identifier)?.who.identifier?.value as string);
const nextLink = (res: request.Response): string | undefined => (res.body.link as { relation: string; url: string }[]).find((l) => l.relation === 'next')?.url;

beforeAll(async () => {
  s = await startTestServer();
  const net = await registerNetwork(s, [{ ods: 'RRK' }, { ods: 'RJE' }]);
  const publisher = await s.tokenFor('RRK', 'publisher', { sub: 'pacs-rrk' });
  for (const nhs of [P1, P2]) expect((await post(s, publisher, '/fhir/ImagingStudy', aStudy({ nhs, endpointId: net.RRK!.endpointId }))).status).toBe(201);
  const jones = await s.tokenFor('RJE', 'clinician', { sub: 'dr.jones' });
  const patel = await s.tokenFor('RRK', 'clinician', { sub: 'dr.patel' });
  const glass = await s.tokenFor('RJE', 'clinician', { sub: 'dr.glass', purposeOfUse: 'ETREAT', breakGlassReason: 'Unconscious patient in the emergency department' });
  expect((await get(s, jones, search(P1))).status).toBe(200);
  expect((await get(s, jones, search(P2))).status).toBe(200);
  expect((await get(s, patel, search(P1))).status).toBe(200);
  expect((await get(s, glass, search(P2))).status).toBe(200);
  auditor = await s.tokenFor('X26', 'auditor', { sub: 'ig.lead' });
});
afterAll(async () => s.close());

describe('who may review', () => {
  it.each(['clinician', 'publisher', 'admin', 'system', 'peer'] as const)('when a %s searches AuditEvent, then 403 and the refusal is audited', async (role) => {
    const token = await s.tokenFor('RJE', role, { sub: `nosy.${role}` });
    const res = await get(s, token, '/fhir/AuditEvent');
    expect(res.status).toBe(403);
    expect(res.body.resourceType).toBe('OperationOutcome');
    expect(spineCode(res)).toBe('ACCESS_DENIED_LEVEL');
    const rows = await s.db.query<{ outcome: string; subtype: string }>('select outcome, subtype from audit_event where agent_user = $1', [`nosy.${role}`]);
    expect(rows.rows).toEqual([{ outcome: '4', subtype: 'search-type' }]);
  });

  it('when a clinician reads an AuditEvent by id, then 403', async () => {
    const any = await s.db.query<{ id: string }>('select id from audit_event limit 1');
    const res = await get(s, await s.tokenFor('RJE', 'clinician'), `/fhir/AuditEvent/${any.rows[0]!.id}`);
    expect(res.status).toBe(403);
  });

  it('when there is no token, then 401', async () => {
    const res = await request(s.baseUrl).get('/fhir/AuditEvent');
    expect(res.status).toBe(401);
    expect(res.body.resourceType).toBe('OperationOutcome');
  });
});

describe('filters', () => {
  it('when the auditor searches by patient, then only events naming that patient come back, as a searchset of AuditEvents', async () => {
    const res = await get(s, auditor, `/fhir/AuditEvent?patient=${P1}&subtype=search-type`);
    expect(res.status).toBe(200);
    expect(res.body.resourceType).toBe('Bundle');
    expect(res.body.type).toBe('searchset');
    expect(entries(res).every((e) => e.resource.resourceType === 'AuditEvent')).toBe(true);
    expect(entries(res).every((e) => e.resource.entity.some((x) => x.what?.identifier?.value === P1))).toBe(true);
    expect(users(res).sort()).toEqual(['dr.jones', 'dr.patel']);
    const byRef = await get(s, auditor, `/fhir/AuditEvent?patient=Patient/${P1}&subtype=search-type`);
    // The first review named P1, so it is now in the trail about P1 too.
    expect(users(byRef).sort()).toEqual(['dr.jones', 'dr.patel', 'ig.lead']);
  });

  it('when searching by entity-identifier with the NHS number system, then the same; another system is refused', async () => {
    const res = await get(s, auditor, `/fhir/AuditEvent?entity-identifier=${encodeURIComponent(`${NHS}|${P2}`)}&subtype=search-type`);
    expect(users(res).sort()).toEqual(['dr.glass', 'dr.jones']);
    const bad = await get(s, auditor, `/fhir/AuditEvent?entity-identifier=${encodeURIComponent(`urn:other|${P2}`)}`);
    expect(bad.status).toBe(400);
    expect(spineCode(bad)).toBe('INVALID_IDENTIFIER_SYSTEM');
  });

  it('when searching by agent and agent-identifier (issuer|subject), then only that user', async () => {
    expect(users(await get(s, auditor, '/fhir/AuditEvent?agent=dr.jones')).every((u) => u === 'dr.jones')).toBe(true);
    expect(entries(await get(s, auditor, '/fhir/AuditEvent?agent=dr.jones'))).toHaveLength(2);
    const withIssuer = await get(s, auditor, `/fhir/AuditEvent?agent-identifier=${encodeURIComponent(`${DEV_ISSUER}|dr.jones`)}`);
    expect(entries(withIssuer)).toHaveLength(2);
    const otherIssuer = await get(s, auditor, `/fhir/AuditEvent?agent-identifier=${encodeURIComponent('https://idp.example|dr.jones')}`);
    expect(otherIssuer.status).toBe(200);
    expect(entries(otherIssuer)).toHaveLength(0);
  });

  it('when searching by organisation (agent-organization or organization), then only that ODS code', async () => {
    const a = await get(s, auditor, '/fhir/AuditEvent?agent-organization=RRK&subtype=search-type&agent=dr.patel,dr.jones');
    expect(users(a)).toEqual(['dr.patel']);
    const b = await get(s, auditor, `/fhir/AuditEvent?organization=${encodeURIComponent('https://fhir.nhs.uk/Id/ods-organization-code|RJE')}&subtype=search-type&patient=${P1}`);
    expect(users(b)).toEqual(['dr.jones']);
  });

  it('when searching by date range, then events inside it only', async () => {
    const today = new Date().toISOString().slice(0, 10);
    const inside = await get(s, auditor, `/fhir/AuditEvent?date=ge${today}&date=le${today}&agent=dr.jones`);
    expect(entries(inside)).toHaveLength(2);
    const before = await get(s, auditor, '/fhir/AuditEvent?date=lt2020-01-01&agent=dr.jones');
    expect(entries(before)).toHaveLength(0);
    const bad = await get(s, auditor, '/fhir/AuditEvent?date=yesterday');
    expect(bad.status).toBe(400);
  });

  it('when searching by action, outcome, subtype, purpose and break-glass, then each narrows correctly', async () => {
    const creates = await get(s, auditor, '/fhir/AuditEvent?action=C&agent=pacs-rrk');
    expect(entries(creates)).toHaveLength(2);
    const refused = await get(s, auditor, '/fhir/AuditEvent?outcome=4&agent=nosy.admin');
    expect(entries(refused)).toHaveLength(1);
    expect(entries(refused)[0]!.resource.outcome).toBe('4');
    const emergency = await get(s, auditor, '/fhir/AuditEvent?purpose=ETREAT');
    expect(users(emergency)).toEqual(['dr.glass']);
    const glass = await get(s, auditor, '/fhir/AuditEvent?break-glass=true');
    expect(users(glass)).toEqual(['dr.glass']);
    expect(entries(glass)[0]!.resource.meta.security).toEqual([expect.objectContaining({ code: 'BTG' })]);
    expect((await get(s, auditor, '/fhir/AuditEvent?action=X')).status).toBe(400);
    expect((await get(s, auditor, '/fhir/AuditEvent?break-glass=maybe')).status).toBe(400);
  });

  it('when a value carries SQL, then it is only ever a value', async () => {
    const res = await get(s, auditor, `/fhir/AuditEvent?agent=${encodeURIComponent("x' or '1'='1")}`);
    expect(res.status).toBe(200);
    expect(entries(res)).toHaveLength(0);
  });

  it('when a parameter is unknown, then 400 rather than a silently unfiltered trail', async () => {
    const res = await get(s, auditor, '/fhir/AuditEvent?patient-name=smith');
    expect(res.status).toBe(400);
    expect(res.body.issue[0].diagnostics).toMatch(/patient-name/);
  });
});

describe('order and paging', () => {
  it('when sorted by -date (default) or date, then recorded times run that way', async () => {
    const desc = entries(await get(s, auditor, '/fhir/AuditEvent?_count=50')).map((e) => e.resource.recorded);
    expect(desc.length).toBeGreaterThan(5);
    expect([...desc].sort().reverse()).toEqual(desc);
    const asc = entries(await get(s, auditor, '/fhir/AuditEvent?_sort=date&_count=50')).map((e) => e.resource.recorded);
    expect([...asc].sort()).toEqual(asc);
    expect((await get(s, auditor, '/fhir/AuditEvent?_sort=agent')).status).toBe(400);
  });

  it('when paged with _count=2, then next links walk every event once, and previous goes back', async () => {
    const all = (await s.db.query<{ n: number }>("select count(*)::int as n from audit_event where subtype <> 'search-type' or agent_user <> 'ig.lead'")).rows[0]!.n;
    const seen: string[] = [];
    let url: string | undefined = `${s.fhirBase}/AuditEvent?_count=2`;
    let pages = 0;
    let second: request.Response | undefined;
    while (url) {
      const res = await get(s, auditor, url.slice(s.baseUrl.length));
      expect(res.status).toBe(200);
      expect(entries(res).length).toBeLessThanOrEqual(2);
      seen.push(...entries(res).map((e) => e.resource.id));
      if (++pages === 2) second = res;
      url = nextLink(res);
    }
    expect(new Set(seen).size).toBe(seen.length);
    // Every event that existed before the walk is seen; the walk's own audits come after its start.
    expect(seen.length).toBeGreaterThanOrEqual(all);
    const prev = (second!.body.link as { relation: string; url: string }[]).find((l) => l.relation === 'previous')!.url;
    const back = await get(s, auditor, prev.slice(s.baseUrl.length));
    expect(entries(back).map((e) => e.resource.id)).toEqual(seen.slice(0, 2));
  });

  it('when a cursor is forged, then 400', async () => {
    expect((await get(s, auditor, '/fhir/AuditEvent?_cursor=bm9wZQ')).status).toBe(400);
  });
});

describe('read, POST _search, capability, and the review audits itself', () => {
  it('when the auditor reads one AuditEvent, then it is the BALP rendering of the stored facts', async () => {
    const row = (await s.db.query<{ id: string; resource: string }>("select id, resource from audit_event where agent_user = 'dr.glass'")).rows[0]!;
    const res = await get(s, auditor, `/fhir/AuditEvent/${row.id}`);
    expect(res.status).toBe(200);
    const stored = JSON.parse(row.resource) as StoredAuditEvent;
    expect(stored).toMatchObject({ format: 1, id: row.id, agent: { subject: 'dr.glass' } });
    expect(res.body).toEqual(balpAuditEvent(stored));
    expect(res.body).toMatchObject({ resourceType: 'AuditEvent', id: row.id, recorded: stored.recorded });
    expect((await get(s, auditor, '/fhir/AuditEvent/no-such-event')).status).toBe(404);
  });

  it('when the auditor POSTs _search, then the same filters apply', async () => {
    const res = await request(s.baseUrl).post('/fhir/AuditEvent/_search').set('authorization', `Bearer ${auditor}`).set('content-type', 'application/x-www-form-urlencoded').send('agent=dr.patel');
    expect(res.status).toBe(200);
    expect(users(res)).toEqual(['dr.patel']);
  });

  it('when the auditor searches about a patient, then that review is itself an AuditEvent naming the auditor and the patient', async () => {
    const sub = 'ig.lead.self-audit';
    const token = await s.tokenFor('X26', 'auditor', { sub });
    expect((await get(s, token, `/fhir/AuditEvent?patient=${P2}`)).status).toBe(200);
    const rows = await s.db.query<{ subtype: string; action: string; patients: string[]; outcome: string }>('select subtype, action, patients, outcome from audit_event where agent_user = $1', [sub]);
    expect(rows.rows).toEqual([{ subtype: 'search-type', action: 'E', patients: [P2], outcome: '0' }]);
  });

  it('when the CapabilityStatement is read, then it lists AuditEvent with its search parameters', async () => {
    const res = await request(s.baseUrl).get('/fhir/metadata');
    const ae = (res.body.rest[0].resource as { type: string; searchParam: { name: string }[]; interaction: { code: string }[] }[]).filter((r) => r.type === 'AuditEvent');
    expect(ae).toHaveLength(1);
    expect(ae[0]!.interaction.map((i) => i.code).sort()).toEqual(['read', 'search-type']);
    expect(ae[0]!.searchParam.map((p) => p.name)).toEqual(expect.arrayContaining(['patient', 'entity-identifier', 'agent', 'agent-identifier', 'agent-organization', 'organization', 'date', 'action', 'outcome', 'subtype', 'purpose', 'break-glass']));
  });
});
