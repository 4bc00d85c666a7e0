import request from 'supertest';
import { startTestServer } from './helpers/server';
import type { TestServer } from './helpers/server';
import { FHIR_JSON, aDocument, aStudy, get, patient, post, registerNetwork, spineCode } from './helpers/fixtures';

let s: TestServer;
let net: Awaited<ReturnType<typeof registerNetwork>>;
let rrk: string;
let clinician: string;

beforeAll(async () => {
  s = await startTestServer();
  net = await registerNetwork(s, [{ ods: 'RRK' }]);
  rrk = await s.tokenFor('RRK', 'publisher');
  clinician = await s.tokenFor('RRK', 'clinician');
});
afterAll(async () => s.close());

async function pointerCount(): Promise<number> {
  const r = await s.db.query<{ n: number }>('select (select count(*) from imaging_study) + (select count(*) from document_reference) + (select count(*) from resource_version where resource_type in ($1, $2)) as n', ['ImagingStudy', 'DocumentReference']);
  return Number(r.rows[0]?.n);
}

const raw = (body: string, type = FHIR_JSON): request.Test =>
  request(s.baseUrl).post('/fhir/ImagingStudy').set('authorization', `Bearer ${rrk}`).set('content-type', type).send(body);

describe('bad input leaves the store unchanged', () => {
  let before: number;
  beforeEach(async () => {
    before = await pointerCount();
  });
  afterEach(async () => {
    expect(await pointerCount()).toBe(before);
  });

  it('when the body is not JSON, then 400 MESSAGE_NOT_WELL_FORMED', async () => {
    const res = await raw('{"resourceType": "ImagingStudy",');
    expect(res.status).toBe(400);
    expect(spineCode(res)).toBe('MESSAGE_NOT_WELL_FORMED');
  });

  it('when the content type is wrong, then 415', async () => {
    const res = await raw(JSON.stringify(aStudy({ endpointId: net.RRK!.endpointId })), 'text/plain');
    expect(res.status).toBe(415);
    expect(res.body.resourceType).toBe('OperationOutcome');
  });

  it('when the resourceType does not match the URL, then 400', async () => {
    const res = await raw(JSON.stringify({ ...aStudy({ endpointId: net.RRK!.endpointId }), resourceType: 'Patient' }));
    expect(res.status).toBe(400);
    expect(res.body.issue[0].diagnostics).toMatch(/resourceType Patient/);
  });

  it('when the body is 10 MB, then 413', async () => {
    const res = await raw(`{"resourceType":"ImagingStudy","description":"${'x'.repeat(10 * 1024 * 1024)}"}`);
    expect(res.status).toBe(413);
    expect(spineCode(res)).toBe('PAYLOAD_TOO_LARGE');
  });

  it('when the JSON is nested 10,000 deep, then 400 without parsing it', async () => {
    const res = await raw(`${'['.repeat(10000)}${']'.repeat(10000)}`);
    expect(res.status).toBe(400);
    expect(res.body.issue[0].diagnostics).toMatch(/nested/);
  });

  it('when the NHS number fails its check digit, then 422 INVALID_NHS_NUMBER pointing at the element', async () => {
    const study = aStudy({ endpointId: net.RRK!.endpointId, nhs: '9990000019' });
    const res = await raw(JSON.stringify(study));
    expect(res.status).toBe(422);
    expect(spineCode(res)).toBe('INVALID_NHS_NUMBER');
    expect(res.body.issue[0].expression).toEqual(['ImagingStudy.subject.identifier.value']);
  });

  it('when the Study Instance UID is invalid, then 422 with the identifier expression', async () => {
    const res = await raw(JSON.stringify(aStudy({ endpointId: net.RRK!.endpointId, uid: '1.02.3' })));
    expect(res.status).toBe(422);
    expect(res.body.issue[0].expression[0]).toBe('ImagingStudy.identifier[0].value');
  });

  it('when the modality is not a DCM code, then 422', async () => {
    const res = await raw(JSON.stringify(aStudy({ endpointId: net.RRK!.endpointId, modality: ['XYZ'] })));
    expect(res.status).toBe(422);
    expect(res.body.issue[0].expression[0]).toBe('ImagingStudy.modality[0]');
  });

  it('when the endpoint is not registered, then 422', async () => {
    const res = await raw(JSON.stringify(aStudy({ endpointId: 'nope' })));
    expect(res.status).toBe(422);
    expect(res.body.issue[0].expression[0]).toBe('ImagingStudy.endpoint[0]');
  });

  it('when an unknown element is sent, then 422 naming it', async () => {
    const res = await raw(JSON.stringify({ ...aStudy({ endpointId: net.RRK!.endpointId }), sneaky: 1 }));
    expect(res.status).toBe(422);
    expect(res.body.issue[0].diagnostics).toMatch(/sneaky/);
  });

  it('when a document pointer has no category coding of ours, then 422', async () => {
    const doc = aDocument({ custodian: 'RRK' });
    (doc.category as unknown[]) = [{ coding: [{ system: 'http://snomed.info/sct', code: '1234' }] }];
    const res = await post(s, rrk, '/fhir/DocumentReference', doc);
    expect(res.status).toBe(422);
  });

  it('when a document pointer names an unregistered custodian, then 422', async () => {
    const token = await s.tokenFor('RZZ', 'publisher');
    const res = await post(s, token, '/fhir/DocumentReference', aDocument({ custodian: 'RZZ' }));
    expect(res.status).toBe(422);
    expect(res.body.issue[0].expression[0]).toBe('DocumentReference.custodian.identifier.value');
  });

  it.each([
    ['subject', (r: Record<string, unknown>) => ({ ...r, subject: { identifier: { system: 'https://fhir.nhs.uk/Id/nhs-number', value: patient(99) } } })],
    ['type', (r: Record<string, unknown>) => ({ ...r, type: { coding: [{ system: 'https://nicip.nhs.uk', code: 'MBRAI' }] } })],
    ['masterIdentifier', (r: Record<string, unknown>) => ({ ...r, masterIdentifier: { system: 'urn:ietf:rfc:3986', value: 'urn:oid:1.2.3.4' } })],
  ])('when an update changes the immutable %s, then 422 and the pointer is unchanged', async (field, change) => {
    const created = await post(s, rrk, '/fhir/DocumentReference', aDocument({ custodian: 'RRK', nhs: patient(70) }));
    before += 2;
    const res = await request(s.baseUrl).put(`/fhir/DocumentReference/${created.body.id}`).set('authorization', `Bearer ${rrk}`).set('content-type', FHIR_JSON).send(JSON.stringify(change(created.body)));
    expect(res.status).toBe(422);
    expect(res.body.issue[0].expression[0]).toBe(`DocumentReference.${field}`);
    expect((await get(s, rrk, `/fhir/DocumentReference/${created.body.id}`)).body.meta.versionId).toBe('1');
  });
});

describe('hostile search parameters and ids', () => {
  const evil = ["' or 1=1 --", '"; drop table imaging_study; --', '%', '_', '\\', '1) or (1=1', '9990000018|x', 'a'.repeat(3000)];
  it.each(['patient.identifier', 'identifier', 'modality', 'started', 'status', 'custodian', 'endpoint', '_lastUpdated', '_id', '_sort', '_count', '_cursor'])(
    'when %s carries SQL metacharacters, then a clean 400 or an empty result, never a 500',
    async (param) => {
      for (const v of evil) {
        const res = await request(s.baseUrl).get('/fhir/ImagingStudy').query({ 'patient.identifier': patient(1), [param]: v }).set('authorization', `Bearer ${clinician}`);
        expect([200, 400]).toContain(res.status);
        if (res.status === 200) expect(res.body.entry ?? []).toHaveLength(0);
        else expect(res.body.resourceType).toBe('OperationOutcome');
      }
      const count = await s.db.query('select count(*) from imaging_study');
      expect(count.rowCount).toBe(1);
    },
  );

  it('when an id carries metacharacters, then 400 or 404, never a 500', async () => {
    for (const id of ["x' or '1'='1", '..%2F..%2Fetc', 'a;b']) {
      const res = await request(s.baseUrl).get(`/fhir/ImagingStudy/${encodeURIComponent(id)}`).set('authorization', `Bearer ${clinician}`);
      expect([400, 404]).toContain(res.status);
      expect(res.body.resourceType).toBe('OperationOutcome');
    }
  });

  it('when a search has an invalid NHS number, then 400 INVALID_NHS_NUMBER', async () => {
    const res = await get(s, clinician, '/fhir/ImagingStudy?patient.identifier=https://fhir.nhs.uk/Id/nhs-number|1234567890');
    expect(res.status).toBe(400);
    expect(spineCode(res)).toBe('INVALID_NHS_NUMBER');
  });

  it('when the NHS number comes with another system, then 400 INVALID_IDENTIFIER_SYSTEM', async () => {
    const res = await get(s, clinician, `/fhir/ImagingStudy?patient.identifier=https://example.org|${patient(1)}`);
    expect(res.status).toBe(400);
    expect(spineCode(res)).toBe('INVALID_IDENTIFIER_SYSTEM');
  });
});

describe('request ids', () => {
  it('when X-Request-Id and X-Correlation-Id are sent, then both are echoed; otherwise one is generated', async () => {
    const res = await request(s.baseUrl).get('/fhir/metadata').set('x-request-id', 'abc-123').set('x-correlation-id', 'corr-9');
    expect(res.headers['x-request-id']).toBe('abc-123');
    expect(res.headers['x-correlation-id']).toBe('corr-9');
    const gen = await request(s.baseUrl).get('/fhir/metadata');
    expect(gen.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });
});
