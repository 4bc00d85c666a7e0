import request from 'supertest';
import { startTestServer } from './helpers/server';
import type { TestServer } from './helpers/server';
import { aDocument, aStudy, get, patient, post, registerNetwork, spineCode } from './helpers/fixtures';

let s: TestServer;
let net: Awaited<ReturnType<typeof registerNetwork>>;
let rrk: string;

beforeAll(async () => {
  s = await startTestServer();
  net = await registerNetwork(s, [{ ods: 'RRK' }, { ods: 'RJE' }]);
  rrk = await s.tokenFor('RRK', 'publisher');
});
afterAll(async () => s.close());

const count = async (nhs: string): Promise<number> => {
  const r = await s.db.query<{ n: number }>('select ((select count(*) from imaging_study where patient_nhs = $1) + (select count(*) from document_reference where patient_nhs = $1))::int as n', [nhs]);
  return r.rows[0]?.n ?? -1;
};

describe('transaction Bundles (ITI-65 style)', () => {
  it('when a transaction creates a study and its pointer, then one response entry per request entry, in order, with locations', async () => {
    const nhs = patient(200);
    const study = aStudy({ endpointId: net.RRK!.endpointId, nhs });
    const doc = aDocument({ custodian: 'RRK', nhs });
    (doc.context as { related: unknown[] }).related.push({ reference: 'urn:uuid:8f7a0c0e-0000-4000-8000-000000000001' });
    const bundle = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { fullUrl: 'urn:uuid:8f7a0c0e-0000-4000-8000-000000000002', resource: doc, request: { method: 'POST', url: 'DocumentReference' } },
        { fullUrl: 'urn:uuid:8f7a0c0e-0000-4000-8000-000000000001', resource: study, request: { method: 'POST', url: 'ImagingStudy' } },
      ],
    };
    const res = await post(s, rrk, '/fhir', bundle);
    expect(res.status).toBe(200);
    expect(res.body.type).toBe('transaction-response');
    expect(res.body.entry).toHaveLength(2);
    expect(res.body.entry[0].response.location).toMatch(/^DocumentReference\//);
    expect(res.body.entry[1].response.location).toMatch(/^ImagingStudy\//);
    expect(res.body.entry.map((e: { response: { status: string } }) => e.response.status)).toEqual(['201 Created', '201 Created']);
    const docId = res.body.entry[0].response.location.split('/')[1];
    const studyId = res.body.entry[1].response.location.split('/')[1];
    const stored = await get(s, rrk, `/fhir/DocumentReference/${docId}`);
    expect(stored.body.context.related[1].reference).toBe(`ImagingStudy/${studyId}`);
  });

  it('when one entry of a transaction is invalid, then nothing at all is written and the error names the entry', async () => {
    const nhs = patient(201);
    const good = aStudy({ endpointId: net.RRK!.endpointId, nhs });
    const bad = aStudy({ endpointId: net.RRK!.endpointId, nhs: '9990000019' });
    const res = await post(s, rrk, '/fhir', { resourceType: 'Bundle', type: 'transaction', entry: [good, bad].map((r) => ({ resource: r, request: { method: 'POST', url: 'ImagingStudy' } })) });
    expect(res.status).toBe(422);
    expect(res.body.issue[0].expression[0]).toBe('Bundle.entry[1].resource.subject.identifier.value');
    expect(await count(nhs)).toBe(0);
  });

  it('when a transaction writes for another custodian, then 403 and nothing is written', async () => {
    const nhs = patient(202);
    const res = await post(s, rrk, '/fhir', {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { resource: aStudy({ endpointId: net.RRK!.endpointId, nhs }), request: { method: 'POST', url: 'ImagingStudy' } },
        { resource: aStudy({ endpointId: net.RJE!.endpointId, nhs }), request: { method: 'POST', url: 'ImagingStudy' } },
      ],
    });
    expect(res.status).toBe(403);
    expect(spineCode(res)).toBe('AUTHOR_CREDENTIALS_ERROR');
    expect(await count(nhs)).toBe(0);
  });

  it('when conditional updates are re-sent, then the second run creates nothing and reports unchanged', async () => {
    const nhs = patient(203);
    const uid = '1.2.826.0.1.3680043.10.9.203.1';
    const bundle = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { resource: aStudy({ endpointId: net.RRK!.endpointId, nhs, uid }), request: { method: 'PUT', url: `ImagingStudy?identifier=urn:dicom:uid|urn:oid:${uid}` } },
        { resource: aDocument({ custodian: 'RRK', nhs, studyUid: uid }), request: { method: 'PUT', url: `DocumentReference?identifier=urn:ietf:rfc:3986|urn:oid:${uid}` } },
      ],
    };
    const first = await post(s, rrk, '/fhir', bundle);
    expect(first.body.entry.map((e: { response: { outcome: { issue: { details: { coding: { code: string }[] } }[] } } }) => e.response.outcome.issue[0]!.details.coding[0]!.code)).toEqual(['RESOURCE_CREATED', 'RESOURCE_CREATED']);
    const second = await post(s, rrk, '/fhir', bundle);
    expect(second.body.entry.map((e: { response: { outcome: { issue: { details: { coding: { code: string }[] } }[] } } }) => e.response.outcome.issue[0]!.details.coding[0]!.code)).toEqual(['RESOURCE_UNCHANGED', 'RESOURCE_UNCHANGED']);
    (bundle.entry[0]!.resource as { description: string }).description = 'changed';
    const third = await post(s, rrk, '/fhir', bundle);
    expect(third.body.entry[0].response.outcome.issue[0].details.coding[0].code).toBe('RESOURCE_UPDATED');
    expect(await count(nhs)).toBe(2);
  });

  it('when RJE sends a conditional update for a study UID that RRK holds, then RJE gets its own pointer and RRK\'s is untouched', async () => {
    const nhs = patient(204);
    const uid = '1.2.826.0.1.3680043.10.9.204.1';
    await post(s, rrk, '/fhir/ImagingStudy', aStudy({ endpointId: net.RRK!.endpointId, nhs, uid }));
    const rje = await s.tokenFor('RJE', 'publisher');
    const res = await post(s, rje, '/fhir', { resourceType: 'Bundle', type: 'transaction', entry: [{ resource: aStudy({ endpointId: net.RJE!.endpointId, nhs, uid }), request: { method: 'PUT', url: `ImagingStudy?identifier=urn:dicom:uid|urn:oid:${uid}` } }] });
    expect(res.body.entry[0].response.status).toBe('201 Created');
    expect(await count(nhs)).toBe(2);
  });

  it('when a batch has one bad entry, then the others succeed and the bad one reports its error', async () => {
    const nhs = patient(205);
    const res = await post(s, rrk, '/fhir', {
      resourceType: 'Bundle',
      type: 'batch',
      entry: [
        { resource: aStudy({ endpointId: net.RRK!.endpointId, nhs }), request: { method: 'POST', url: 'ImagingStudy' } },
        { resource: aStudy({ endpointId: 'missing', nhs }), request: { method: 'POST', url: 'ImagingStudy' } },
        { request: { method: 'GET', url: `ImagingStudy?patient.identifier=${nhs}` } },
      ],
    });
    expect(res.body.type).toBe('batch-response');
    expect(res.body.entry[0].response.status).toBe('201 Created');
    expect(res.body.entry[1].response.status).toBe('422');
    expect(res.body.entry[1].response.outcome.resourceType).toBe('OperationOutcome');
    expect(res.body.entry[2].resource.entry).toHaveLength(1);
  });

  it('when the Bundle type is not transaction or batch, then 400', async () => {
    const res = await post(s, rrk, '/fhir', { resourceType: 'Bundle', type: 'collection', entry: [] });
    expect(res.status).toBe(400);
  });
});

describe('metadata and health', () => {
  it('when /fhir/metadata is read without a token, then a CapabilityStatement lists what the router serves', async () => {
    const res = await request(s.baseUrl).get('/fhir/metadata');
    expect(res.status).toBe(200);
    expect(res.body.resourceType).toBe('CapabilityStatement');
    const study = res.body.rest[0].resource.find((r: { type: string }) => r.type === 'ImagingStudy');
    expect(study.interaction.map((i: { code: string }) => i.code)).toEqual(expect.arrayContaining(['read', 'vread', 'update', 'delete', 'history-instance', 'create', 'search-type']));
    expect(study.searchParam.map((p: { name: string }) => p.name)).toEqual(expect.arrayContaining(['identifier', 'modality', 'started', 'custodian', 'patient']));
    expect(res.body.rest[0].interaction.map((i: { code: string }) => i.code)).toEqual(['transaction', 'batch']);
    const types = res.body.rest[0].resource.map((r: { type: string }) => r.type);
    expect(new Set(types).size).toBe(types.length);
    expect(study.operation.map((o: { name: string }) => o.name)).toContain('resolve');
  });

  it('when /healthz and /readyz are called, then the process and database answer', async () => {
    expect((await request(s.baseUrl).get('/healthz')).status).toBe(200);
    const ready = await request(s.baseUrl).get('/readyz');
    expect(ready.status).toBe(200);
    expect(ready.body.database).toBe(process.env.DATABASE_URL ? 'postgres' : 'pglite');
  });
});
