import type { AuditedRow } from '../helpers/audit';
import { auditEventsFor } from '../helpers/audit';
import { randomUUID } from 'node:crypto';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import request from 'supertest';
import { DEMO_PATIENTS } from '../../src/demo/seed';
import { RETRIEVAL_TOKEN_TYPE, retrievalAudience } from '../../src/resolve/retrieval-token';
import { startTestServer } from '../helpers/server';
import type { TestServer } from '../helpers/server';
import { aDocument, get, post, spineCode } from '../helpers/fixtures';

let s: TestServer;

interface Param { name: string; valueUrl?: string; valueString?: string; valueIdentifier?: { system: string; value: string }; valueReference?: { reference: string }; part?: Param[]; valueInstant?: string }
const param = (body: { parameter: Param[] }, name: string): Param | undefined => body.parameter.find((p) => p.name === name);
const tokenOf = (body: { parameter: Param[] }): string => param(body, 'retrievalToken')!.part!.find((p) => p.name === 'token')!.valueString!;

async function pointerId(table: 'imaging_study' | 'document_reference', custodian: string, nhs: string, extra = ''): Promise<string> {
  const r = await s.db.query<{ id: string }>(`select id from ${table} where custodian_ods = $1 and patient_nhs = $2 ${extra} order by id limit 1`, [custodian, nhs]);
  return r.rows[0]!.id;
}

async function auditFor(requestId: string): Promise<AuditedRow[]> {
  return auditEventsFor(s.db, requestId);
}

beforeAll(async () => {
  s = await startTestServer({ demo: true });
});
afterAll(async () => {
  await s?.close();
});

describe('$resolve', () => {
  it('when a clinician of another trust resolves a shared ImagingStudy, then the Parameters carry the custodian URLs, the gateway, the viewer and a bound ES256 token', async () => {
    const id = await pointerId('imaging_study', 'RRK', DEMO_PATIENTS.shared);
    const token = await s.tokenFor('RJE', 'clinician', { sub: 'dr.jones', name: 'Dr Jones' });
    const res = await get(s, token, `/fhir/ImagingStudy/${id}/$resolve`);
    expect({ status: res.status, body: res.status === 200 ? undefined : res.text }).toEqual({ status: 200 });
    expect(res.headers['content-type']).toMatch(/application\/fhir\+json/);
    expect(res.body.resourceType).toBe('Parameters');
    const uid = '1.2.826.0.1.3680043.10.1001.1';
    expect(param(res.body, 'studyInstanceUid')!.valueIdentifier).toEqual({ system: 'urn:dicom:uid', value: `urn:oid:${uid}` });
    expect(param(res.body, 'custodian')!.valueIdentifier!.value).toBe('RRK');
    expect(param(res.body, 'wadoRsStudyUrl')!.valueUrl).toBe(`https://pacs.rrk.example.nhs.uk/dicom-web/studies/${uid}`);
    expect(param(res.body, 'qidoRsUrl')!.valueUrl).toBe(`https://pacs.rrk.example.nhs.uk/dicom-web/studies?StudyInstanceUID=${uid}`);
    expect(param(res.body, 'gatewayStudyUrl')!.valueUrl).toBe(`${s.baseUrl}/dicomweb/RRK/studies/${uid}`);
    expect(param(res.body, 'viewerUrl')!.valueUrl).toBe(`http://localhost:3000/viewer?StudyInstanceUIDs=${uid}`);
    expect(param(res.body, 'viewerUrlTemplate')!.valueString).toContain('{StudyInstanceUID}');
    expect(param(res.body, 'endpoint')!.valueReference!.reference).toMatch(/^Endpoint\//);

    const jwt = tokenOf(res.body);
    expect(decodeProtectedHeader(jwt)).toMatchObject({ alg: 'ES256', typ: RETRIEVAL_TOKEN_TYPE });
    // A trust's PACS gateway needs only the published key set.
    const jwks = await request(s.baseUrl).get('/.well-known/jwks.json');
    expect(jwks.status).toBe(200);
    expect(jwks.headers['cache-control']).toMatch(/max-age=\d+/);
    expect(jwks.body.keys.every((k: Record<string, unknown>) => k.d === undefined && k.kty === 'EC')).toBe(true);
    const { payload } = await jwtVerify(jwt, createLocalJWKSet(jwks.body), { issuer: s.baseUrl, audience: retrievalAudience('RRK'), typ: RETRIEVAL_TOKEN_TYPE });
    expect(payload).toMatchObject({ sub: 'dr.jones', org: 'RJE', custodian: 'RRK', study_uid: uid, role: 'clinician', purpose_of_use: 'TREAT', name: 'Dr Jones' });
    expect(payload.exp! - payload.iat!).toBe(300);
    const expires = param(res.body, 'retrievalToken')!.part!.find((p) => p.name === 'expires')!.valueInstant!;
    expect(new Date(expires).getTime()).toBe(payload.exp! * 1000);
    // No patient data in a token that PACS gateways will log.
    expect(JSON.stringify(payload)).not.toContain(DEMO_PATIENTS.shared);
  });

  it('when a report DocumentReference is resolved, then it resolves to its related study and gives the report document URL', async () => {
    const id = await pointerId('document_reference', 'RRK', DEMO_PATIENTS.shared, "and categories @> array['http://snomed.info/sct|721981007']");
    const res = await get(s, await s.tokenFor('RRK', 'clinician'), `/fhir/DocumentReference/${id}/$resolve`);
    expect(res.status).toBe(200);
    expect(param(res.body, 'studyInstanceUid')!.valueIdentifier!.value).toBe('urn:oid:1.2.826.0.1.3680043.10.1001.1');
    expect(param(res.body, 'attachmentUrl')!.valueUrl).toContain('/instances/1.2.826.0.1.3680043.10.1001.1.99.1');
  });

  it('when the pointer is withheld by consent, then 404 exactly as for a pointer that does not exist, and break-glass resolves it', async () => {
    const id = await pointerId('imaging_study', 'RXK', DEMO_PATIENTS.optedOut);
    const clinician = await s.tokenFor('RRK', 'clinician');
    const withheld = await get(s, clinician, `/fhir/ImagingStudy/${id}/$resolve`);
    const missing = await get(s, clinician, '/fhir/ImagingStudy/no-such-study/$resolve');
    expect(withheld.status).toBe(404);
    expect(missing.status).toBe(404);
    expect(spineCode(withheld)).toBe('NO_RECORD_FOUND');
    expect(withheld.body.issue[0].diagnostics.replace(id, 'X')).toBe(missing.body.issue[0].diagnostics.replace('no-such-study', 'X'));
    const read = await get(s, clinician, `/fhir/ImagingStudy/${id}`);
    expect(read.status).toBe(404);

    const glass = await s.tokenFor('RRK', 'clinician', { purposeOfUse: 'ETREAT' });
    const requestId = randomUUID();
    const res = await request(s.baseUrl).get(`/fhir/ImagingStudy/${id}/$resolve`).set('authorization', `Bearer ${glass}`).set('x-break-glass-reason', 'Unconscious patient in resus').set('x-request-id', requestId);
    expect(res.status).toBe(200);
    const { payload } = await jwtVerify(tokenOf(res.body), createLocalJWKSet((await request(s.baseUrl).get('/.well-known/jwks.json')).body));
    expect(payload).toMatchObject({ purpose_of_use: 'ETREAT', break_glass: true });
    expect(JSON.stringify(payload)).not.toContain('resus');
    const [event] = await auditFor(requestId);
    expect(event!.resource).toContain('"code":"BTG"');
  });

  it('when a restricted pointer or a denied organisation asks, then 404', async () => {
    const restricted = await pointerId('imaging_study', 'RRK', DEMO_PATIENTS.restricted);
    expect((await get(s, await s.tokenFor('RJE', 'clinician'), `/fhir/ImagingStudy/${restricted}/$resolve`)).status).toBe(404);
    const denied = await pointerId('imaging_study', 'RNA', DEMO_PATIENTS.denied);
    expect((await get(s, await s.tokenFor('RJE', 'clinician'), `/fhir/ImagingStudy/${denied}/$resolve`)).status).toBe(404);
    expect((await get(s, await s.tokenFor('RRK', 'clinician'), `/fhir/ImagingStudy/${denied}/$resolve`)).status).toBe(200);
    // The custodian always sees its own.
    expect((await get(s, await s.tokenFor('RRK', 'clinician'), `/fhir/ImagingStudy/${restricted}/$resolve`)).status).toBe(200);
  });

  it('when the caller has no token, no read scope, or a malformed id, then 401, 403 and 400 OperationOutcomes', async () => {
    const id = await pointerId('imaging_study', 'RRK', DEMO_PATIENTS.shared);
    const none = await request(s.baseUrl).get(`/fhir/ImagingStudy/${id}/$resolve`);
    expect(none.status).toBe(401);
    expect(none.body.resourceType).toBe('OperationOutcome');
    const auditor = await get(s, await s.tokenFor('X26', 'auditor'), `/fhir/ImagingStudy/${id}/$resolve`);
    expect(auditor.status).toBe(403);
    expect(spineCode(auditor)).toBe('ACCESS_DENIED_LEVEL');
    const bad = await get(s, await s.tokenFor('RRK', 'clinician'), `/fhir/ImagingStudy/${'x'.repeat(70)}/$resolve`);
    expect(bad.status).toBe(400);
  });

  it('when a DocumentReference names no study, or the custodian has no WADO-RS endpoint, then 422', async () => {
    const publisher = await s.tokenFor('RJE', 'publisher');
    const doc = aDocument({ nhs: DEMO_PATIENTS.shared, custodian: 'RJE', category: 'report' });
    delete (doc as { context?: unknown }).context;
    const created = await post(s, publisher, '/fhir/DocumentReference', doc);
    expect(created.status).toBe(201);
    const res = await get(s, await s.tokenFor('RJE', 'clinician'), `/fhir/DocumentReference/${created.body.id}/$resolve`);
    expect(res.status).toBe(422);
    expect(res.body.issue[0].diagnostics).toContain('names no Study Instance UID');

    const orphan = await post(s, await s.tokenFor('RL4', 'publisher'), '/fhir/DocumentReference', aDocument({ nhs: DEMO_PATIENTS.shared, custodian: 'RL4' }));
    expect(orphan.status).toBe(201);
    await s.db.query(`update endpoint set status = 'off' where managing_ods = 'RL4'`);
    try {
      const r = await get(s, await s.tokenFor('RL4', 'clinician'), `/fhir/DocumentReference/${orphan.body.id}/$resolve`);
      expect(r.status).toBe(422);
      expect(r.body.issue[0].diagnostics).toContain('no active dicom-wado-rs Endpoint');
    } finally {
      await s.db.query(`update endpoint set status = 'active' where managing_ods = 'RL4'`);
    }
  });

  it('when $resolve answers or refuses, then the pipeline audits it as the $resolve operation with the patient, the pointer and the token id', async () => {
    const id = await pointerId('imaging_study', 'RJE', DEMO_PATIENTS.shared);
    const ok = randomUUID();
    const res = await request(s.baseUrl).get(`/fhir/ImagingStudy/${id}/$resolve`).set('authorization', `Bearer ${await s.tokenFor('RRK', 'clinician')}`).set('x-request-id', ok);
    expect(res.status).toBe(200);
    const [event] = await auditFor(ok);
    expect(event).toMatchObject({ subtype: '$resolve', outcome: '0', patients: [DEMO_PATIENTS.shared] });
    expect(event!.resource).toContain(`ImagingStudy/${id}`);
    const { payload } = await jwtVerify(tokenOf(res.body), createLocalJWKSet((await request(s.baseUrl).get('/.well-known/jwks.json')).body));
    expect(event!.resource).toContain(payload.jti as string);

    const refused = randomUUID();
    await request(s.baseUrl).get('/fhir/ImagingStudy/nothing-here/$resolve').set('authorization', `Bearer ${await s.tokenFor('RRK', 'clinician')}`).set('x-request-id', refused);
    expect(await auditFor(refused)).toEqual([expect.objectContaining({ subtype: '$resolve', outcome: '4' })]);
  });

  it('when the CapabilityStatement is read, then ImagingStudy and DocumentReference declare the resolve operation', async () => {
    const res = await request(s.baseUrl).get('/fhir/metadata');
    const resources = res.body.rest[0].resource as { type: string; operation?: { name: string; definition: string }[] }[];
    for (const type of ['ImagingStudy', 'DocumentReference']) {
      const ops = resources.filter((r) => r.type === type).flatMap((r) => r.operation ?? []);
      expect(ops.map((o) => o.name)).toContain('resolve');
    }
  });
});
