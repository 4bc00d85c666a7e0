import request from 'supertest';
import { startTestServer } from './helpers/server';
import type { TestServer } from './helpers/server';
import { FHIR_JSON, aDocument, aStudy, get, patient, post, registerNetwork, spineCode } from './helpers/fixtures';

let s: TestServer;
let net: Awaited<ReturnType<typeof registerNetwork>>;
let rrk: string;

beforeAll(async () => {
  s = await startTestServer();
  net = await registerNetwork(s, [{ ods: 'RRK' }, { ods: 'RJE' }]);
  rrk = await s.tokenFor('RRK', 'publisher');
});
afterAll(async () => s.close());

describe('create, read, vread, update, delete', () => {
  it('when a publisher creates a study pointer, then it is readable with ETag, Location and meta', async () => {
    const res = await post(s, rrk, '/fhir/ImagingStudy', aStudy({ endpointId: net.RRK!.endpointId }));
    expect(res.status).toBe(201);
    expect(res.headers.etag).toBe('W/"1"');
    expect(res.headers.location).toBe(`${s.fhirBase}/ImagingStudy/${res.body.id}/_history/1`);
    expect(res.body.meta.versionId).toBe('1');
    const clinician = await s.tokenFor('RJE', 'clinician');
    const read = await get(s, clinician, `/fhir/ImagingStudy/${res.body.id}`);
    expect(read.status).toBe(200);
    expect(read.headers['content-type']).toMatch(/application\/fhir\+json/);
    expect(read.headers['last-modified']).toBeDefined();
    expect(read.body).toEqual(res.body);
  });

  it('when a read names the current version in If-None-Match or a later If-Modified-Since, then 304 without a body; a stale one gets the resource', async () => {
    const created = await post(s, rrk, '/fhir/ImagingStudy', aStudy({ endpointId: net.RRK!.endpointId }));
    const path = `/fhir/ImagingStudy/${created.body.id}`;
    const read = (headers: Record<string, string>): request.Test => {
      let r = request(s.baseUrl).get(path).set('authorization', `Bearer ${rrk}`);
      for (const [k, v] of Object.entries(headers)) r = r.set(k, v);
      return r;
    };
    const same = await read({ 'if-none-match': 'W/"1"' });
    expect(same.status).toBe(304);
    expect(same.text).toBe('');
    expect(same.headers.etag).toBe('W/"1"');
    expect((await read({ 'if-none-match': 'W/"0"' })).status).toBe(200);
    const lastModified = (await read({})).headers['last-modified'] as string;
    expect((await read({ 'if-modified-since': lastModified })).status).toBe(304);
    expect((await read({ 'if-modified-since': new Date(Date.parse(lastModified) - 60_000).toUTCString() })).status).toBe(200);
    const cap = await request(s.baseUrl).get('/fhir/metadata');
    const study = cap.body.rest[0].resource.find((r: { type: string }) => r.type === 'ImagingStudy');
    expect(study.conditionalRead).toBe('full-support');
  });

  it('when updated with the right If-Match, then the version increments and history lists both', async () => {
    const created = await post(s, rrk, '/fhir/ImagingStudy', aStudy({ endpointId: net.RRK!.endpointId }));
    const changed = { ...created.body, description: 'CT Chest (amended)' };
    const stale = await request(s.baseUrl).put(`/fhir/ImagingStudy/${created.body.id}`).set('authorization', `Bearer ${rrk}`).set('content-type', FHIR_JSON).set('if-match', 'W/"7"').send(JSON.stringify(changed));
    expect(stale.status).toBe(412);
    const ok = await request(s.baseUrl).put(`/fhir/ImagingStudy/${created.body.id}`).set('authorization', `Bearer ${rrk}`).set('content-type', FHIR_JSON).set('if-match', 'W/"1"').send(JSON.stringify(changed));
    expect(ok.status).toBe(200);
    expect(ok.body.meta.versionId).toBe('2');
    const v1 = await get(s, rrk, `/fhir/ImagingStudy/${created.body.id}/_history/1`);
    expect(v1.body.description).toBe('CT Chest');
    const hist = await get(s, rrk, `/fhir/ImagingStudy/${created.body.id}/_history`);
    expect(hist.body.type).toBe('history');
    expect(hist.body.entry.map((e: { resource: { meta: { versionId: string } } }) => e.resource.meta.versionId)).toEqual(['2', '1']);
  });

  it('when an update changes nothing, then no new version is made', async () => {
    const created = await post(s, rrk, '/fhir/ImagingStudy', aStudy({ endpointId: net.RRK!.endpointId }));
    const same = await request(s.baseUrl).put(`/fhir/ImagingStudy/${created.body.id}`).set('authorization', `Bearer ${rrk}`).set('content-type', FHIR_JSON).set('prefer', 'return=OperationOutcome').send(JSON.stringify(created.body));
    expect(same.status).toBe(200);
    expect(spineCode(same)).toBe('RESOURCE_UNCHANGED');
    expect(same.headers.etag).toBe('W/"1"');
  });

  it('when deleted, then read answers 410 and vread of the old version still works', async () => {
    const created = await post(s, rrk, '/fhir/ImagingStudy', aStudy({ endpointId: net.RRK!.endpointId }));
    const del = await request(s.baseUrl).delete(`/fhir/ImagingStudy/${created.body.id}`).set('authorization', `Bearer ${rrk}`);
    expect(del.status).toBe(200);
    expect(spineCode(del)).toBe('RESOURCE_DELETED_OK');
    expect((await get(s, rrk, `/fhir/ImagingStudy/${created.body.id}`)).status).toBe(410);
    expect((await get(s, rrk, `/fhir/ImagingStudy/${created.body.id}/_history/1`)).status).toBe(200);
    expect((await get(s, rrk, `/fhir/ImagingStudy/does-not-exist`)).status).toBe(404);
  });

  it('when the same study UID is posted twice by one custodian, then 409 DUPLICATE_REJECTED and one pointer remains', async () => {
    const study = aStudy({ endpointId: net.RRK!.endpointId, nhs: patient(40) });
    expect((await post(s, rrk, '/fhir/ImagingStudy', study)).status).toBe(201);
    const again = await post(s, rrk, '/fhir/ImagingStudy', study);
    expect(again.status).toBe(409);
    expect(spineCode(again)).toBe('DUPLICATE_REJECTED');
    const search = await get(s, rrk, `/fhir/ImagingStudy?patient.identifier=${patient(40)}`);
    expect(search.body.entry).toHaveLength(1);
  });

  it('when two custodians hold the same study, then both pointers are kept and returned with the same UID', async () => {
    const uid = '1.2.826.0.1.3680043.10.9.777.1';
    const rje = await s.tokenFor('RJE', 'publisher');
    expect((await post(s, rrk, '/fhir/ImagingStudy', aStudy({ endpointId: net.RRK!.endpointId, uid, nhs: patient(41) }))).status).toBe(201);
    expect((await post(s, rje, '/fhir/ImagingStudy', aStudy({ endpointId: net.RJE!.endpointId, uid, nhs: patient(41) }))).status).toBe(201);
    const search = await get(s, rrk, `/fhir/ImagingStudy?identifier=urn:oid:${uid}`);
    expect(search.body.entry).toHaveLength(2);
  });

  it('when a conditional create finds the study, then nothing new is made', async () => {
    const study = aStudy({ endpointId: net.RRK!.endpointId, nhs: patient(42) });
    const cond = `identifier=urn:dicom:uid|${(study.identifier as { value: string }[])[0]!.value}`;
    const first = await request(s.baseUrl).post('/fhir/ImagingStudy').set('authorization', `Bearer ${rrk}`).set('content-type', FHIR_JSON).set('if-none-exist', cond).send(JSON.stringify(study));
    expect(first.status).toBe(201);
    const second = await request(s.baseUrl).post('/fhir/ImagingStudy').set('authorization', `Bearer ${rrk}`).set('content-type', FHIR_JSON).set('if-none-exist', cond).send(JSON.stringify(study));
    expect(second.status).toBe(200);
    expect(second.body.id).toBe(first.body.id);
  });

  it('when a document pointer supersedes another, then the old one is marked superseded atomically', async () => {
    const old = await post(s, rrk, '/fhir/DocumentReference', aDocument({ custodian: 'RRK', category: 'report', nhs: patient(43) }));
    expect(old.status).toBe(201);
    const replacement = await post(s, rrk, '/fhir/DocumentReference', aDocument({ custodian: 'RRK', category: 'report', nhs: patient(43), replaces: old.body.id }));
    expect(replacement.status).toBe(201);
    const oldNow = await get(s, rrk, `/fhir/DocumentReference/${old.body.id}`);
    expect(oldNow.body.status).toBe('superseded');
    const current = await get(s, rrk, `/fhir/DocumentReference?patient.identifier=${patient(43)}`);
    expect(current.body.entry.map((e: { resource: { id: string } }) => e.resource.id)).toEqual([replacement.body.id]);
  });

  it('when a supersede targets another patient, then nothing is written', async () => {
    const old = await post(s, rrk, '/fhir/DocumentReference', aDocument({ custodian: 'RRK', nhs: patient(44) }));
    const bad = await post(s, rrk, '/fhir/DocumentReference', aDocument({ custodian: 'RRK', nhs: patient(45), replaces: old.body.id }));
    expect(bad.status).toBe(422);
    expect((await get(s, rrk, `/fhir/DocumentReference/${old.body.id}`)).body.status).toBe('current');
    expect((await get(s, rrk, `/fhir/DocumentReference?patient.identifier=${patient(45)}`)).body.entry).toBeUndefined();
  });
});
