import type { AuditedRow } from '../helpers/audit';
import { auditEventsFor } from '../helpers/audit';
import { randomUUID } from 'node:crypto';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { SignJWT, generateKeyPair } from 'jose';
import request from 'supertest';
import { DEV_ISSUER } from '../../src/access/dev-issuer';
import { allRoutes, createApp } from '../../src/fhir/app';
import { extensions } from '../../src/extensions';
import { startTestServer } from '../helpers/server';
import type { TestServer } from '../helpers/server';
import { FHIR_JSON, NHS, aStudy, anOrganization, get, patient, post, registerNetwork } from '../helpers/fixtures';


let s: TestServer;
let net: Awaited<ReturnType<typeof registerNetwork>>;
let studyId: string;
const P = patient(301);
const SUBTYPES = ['read', 'vread', 'update', 'delete', 'history-instance', 'create', 'search-type', 'batch', 'transaction', 'capabilities', 'operation'];

beforeAll(async () => {
  s = await startTestServer();
  net = await registerNetwork(s, [{ ods: 'RRK' }]);
  const publisher = await s.tokenFor('RRK', 'publisher');
  const created = await post(s, publisher, '/fhir/ImagingStudy', aStudy({ nhs: P, endpointId: net.RRK!.endpointId }));
  expect(created.status).toBe(201);
  studyId = created.body.id;
});
afterAll(async () => s.close());

async function eventFor(requestId: string): Promise<AuditedRow[]> {
  return auditEventsFor(s.db, requestId);
}

describe('every route is audited', () => {
  const routes = allRoutes(extensions());

  it('when the route table is walked, then every route declares a BALP subtype and an action', () => {
    expect(routes.length).toBeGreaterThan(10);
    for (const r of routes) {
      expect({ route: `${r.method} ${r.path}`, subtype: SUBTYPES.includes(r.subtype) }).toEqual({ route: `${r.method} ${r.path}`, subtype: true });
      expect(r.action).toBeDefined();
      if (r.subtype === 'operation') expect(r.operation).toBeTruthy();
    }
  });

  it('when the express app is inspected, then every /fhir route it serves is in the route table or audits itself', () => {
    const app = createApp(s.locus.deps, extensions());
    const served = (app.router as unknown as { stack: { route?: { path: string; methods: Record<string, boolean> } }[] }).stack
      .flatMap((l) => (l.route ? Object.keys(l.route.methods).map((m) => `${m} ${l.route!.path}`) : []))
      .filter((r) => r.split(' ')[1]!.startsWith('/fhir'));
    const table = new Set(routes.map((r) => `${r.method} ${r.path}`));
    // Plain express routes on /fhir must stream and audit themselves (audit-export.int.test.ts covers this one).
    const selfAuditing = new Set(['get /fhir/AuditEvent']);
    expect(served.filter((r) => !table.has(r) && !selfAuditing.has(r))).toEqual([]);
  });

  it('when each route is called once with a token, then an AuditEvent with its subtype is durable for that request', async () => {
    const system = await s.tokenFor('RRK', 'system');
    const auditor = await s.tokenFor('X26', 'auditor');
    const anAudit = (await s.db.query<{ id: string }>('select id from audit_event order by seq limit 1')).rows[0]!.id;
    for (const route of routes) {
      const isAudit = route.path.startsWith('/fhir/AuditEvent');
      const path = route.path
        .replace(':type', 'ImagingStudy')
        .replace(':vid', '1')
        .replace(/:[A-Za-z]+/g, isAudit ? anAudit : studyId);
      const requestId = randomUUID();
      let req = request(s.baseUrl)[route.method](path).set('authorization', `Bearer ${isAudit ? auditor : system}`).set('x-request-id', requestId);
      if (route.method === 'post' && path.endsWith('/_search')) req = req.set('content-type', 'application/x-www-form-urlencoded').send(`patient.identifier=${NHS}|${P}`);
      else if (route.path === '/fhir') req = req.set('content-type', FHIR_JSON).send(JSON.stringify({ resourceType: 'Bundle', type: 'transaction', entry: [{ resource: anOrganization(`T${Date.now() % 10000}`), request: { method: 'POST', url: 'Organization' } }] }));
      else if (route.method === 'post' || route.method === 'put') req = req.set('content-type', FHIR_JSON).send(JSON.stringify(aStudy({ nhs: P, endpointId: net.RRK!.endpointId })));
      else if (route.method === 'get' && route.path === '/fhir/:type') req = req.query({ 'patient.identifier': `${NHS}|${P}` });
      const res = await req;
      expect({ route: `${route.method} ${route.path}`, status: res.status < 500 }).toEqual({ route: `${route.method} ${route.path}`, status: true });
      const events = await eventFor(requestId);
      expect({ route: `${route.method} ${route.path}`, audited: events.length > 0 }).toEqual({ route: `${route.method} ${route.path}`, audited: true });
      const expected = route.subtype === 'operation' ? route.operation : route.subtype;
      if (route.path !== '/fhir') expect(events.map((e) => e.subtype)).toContain(expected);
    }
  });
});

describe('denied requests are audited', () => {
  it('when a forged token (right issuer name, wrong key) is used, then 401 and the event records the identity it claimed', async () => {
    const { privateKey } = await generateKeyPair('ES256');
    const forged = await new SignJWT({ org: 'RRK', role: 'clinician', scope: 'user/ImagingStudy.rs' })
      .setProtectedHeader({ alg: 'ES256', kid: 'mallory' })
      .setIssuer(DEV_ISSUER)
      .setSubject('mallory')
      .setAudience(s.config.audience)
      .setExpirationTime('5m')
      .sign(privateKey);
    const requestId = randomUUID();
    const res = await request(s.baseUrl).get(`/fhir/ImagingStudy?patient.identifier=${NHS}|${P}`).set('authorization', `Bearer ${forged}`).set('x-request-id', requestId);
    expect(res.status).toBe(401);
    const [e] = await eventFor(requestId);
    expect(e).toMatchObject({ outcome: '4', agent_user: 'mallory', agent_ods: 'RRK', subtype: 'search-type' });
    expect(e!.resource).toContain('unverified-identity');
  });

  it('when a clinician tries to register an organisation, then 403 and it is audited with the user', async () => {
    const requestId = randomUUID();
    const token = await s.tokenFor('RRK', 'clinician', { sub: 'dr.overreach' });
    const res = await request(s.baseUrl).post('/fhir/Organization').set('authorization', `Bearer ${token}`).set('content-type', FHIR_JSON).set('x-request-id', requestId).send(JSON.stringify(anOrganization('ZZZ')));
    expect(res.status).toBe(403);
    expect(await eventFor(requestId)).toEqual([expect.objectContaining({ outcome: '4', agent_user: 'dr.overreach', subtype: 'create' })]);
  });
});

describe('break-glass', () => {
  it('when a clinician searches with ETREAT and a stated reason, then break_glass is set and the event carries the BTG label and the reason', async () => {
    const requestId = randomUUID();
    const token = await s.tokenFor('RRK', 'clinician', { purposeOfUse: 'ETREAT', breakGlassReason: 'Trauma call, patient unconscious' });
    expect((await request(s.baseUrl).get(`/fhir/ImagingStudy?patient.identifier=${NHS}|${P}`).set('authorization', `Bearer ${token}`).set('x-request-id', requestId)).status).toBe(200);
    const [e] = await eventFor(requestId);
    expect(e).toMatchObject({ break_glass: true, purpose: 'ETREAT' });
    const event = JSON.parse(e!.resource);
    expect(event.meta.security).toEqual([expect.objectContaining({ system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'BTG' })]);
    expect(JSON.stringify(event.entity)).toContain('Trauma call, patient unconscious');
  });

  it('when the reason is under 10 characters, then it is not break-glass', async () => {
    const requestId = randomUUID();
    const token = await s.tokenFor('RRK', 'clinician', { purposeOfUse: 'ETREAT', breakGlassReason: 'urgent' });
    await request(s.baseUrl).get(`/fhir/ImagingStudy?patient.identifier=${NHS}|${P}`).set('authorization', `Bearer ${token}`).set('x-request-id', requestId);
    expect(await eventFor(requestId)).toEqual([expect.objectContaining({ break_glass: false, purpose: 'ETREAT' })]);
  });
});

describe('append-only and fail-closed', () => {
  it('when anyone updates, deletes or truncates audit_event, then the database refuses', async () => {
    await expect(s.db.query("update audit_event set outcome = '0'")).rejects.toThrow(/append-only/);
    await expect(s.db.query('delete from audit_event')).rejects.toThrow(/append-only/);
    await expect(s.db.exec('truncate audit_event')).rejects.toThrow(/append-only/);
  });

  it('when the source is searched, then no code path updates or deletes audit rows', () => {
    const files: string[] = [];
    const walk = (dir: string): void => {
      for (const f of readdirSync(dir)) {
        const p = join(dir, f);
        if (statSync(p).isDirectory()) walk(p);
        else if (/\.(ts|sql)$/.test(f)) files.push(p);
      }
    };
    walk(join(__dirname, '../../src'));
    const offenders = files.filter((f) => /(update\s+audit_event|delete\s+from\s+audit_event|truncate\s+(table\s+)?audit_event)/i.test(readFileSync(f, 'utf8')));
    expect(offenders).toEqual([]);
  });

  it('when the audit cannot be written, then a search answers 503 with no data, and a write commits nothing', async () => {
    const clinician = await s.tokenFor('RRK', 'clinician');
    const publisher = await s.tokenFor('RRK', 'publisher');
    const uid = `1.2.826.0.1.3680043.10.9.${Date.now()}`;
    await s.db.exec('alter table audit_chain rename to audit_chain_x');
    try {
      const res = await get(s, clinician, `/fhir/ImagingStudy?patient.identifier=${NHS}|${P}`);
      expect(res.status).toBe(503);
      expect(res.body.resourceType).toBe('OperationOutcome');
      expect(res.text).not.toContain('Bundle');
      expect(res.text).not.toContain(P);
      const write = await post(s, publisher, '/fhir/ImagingStudy', aStudy({ nhs: P, uid, endpointId: net.RRK!.endpointId }));
      expect(write.status).toBe(503);
    } finally {
      await s.db.exec('alter table audit_chain_x rename to audit_chain');
    }
    const found = await s.db.query('select 1 from imaging_study where study_uid = $1', [uid]);
    expect(found.rowCount).toBe(0);
  });
});
