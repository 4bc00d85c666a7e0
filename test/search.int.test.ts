import request from 'supertest';
import { startTestServer } from './helpers/server';
import type { TestServer } from './helpers/server';
import { aDocument, aStudy, get, patient, post, registerNetwork, spineCode } from './helpers/fixtures';

let s: TestServer;
let net: Awaited<ReturnType<typeof registerNetwork>>;
let clinician: string;
const P = patient(100);
const Q = `patient.identifier=https://fhir.nhs.uk/Id/nhs-number|${P}`;
const ids = (res: request.Response): string[] => (res.body.entry ?? []).filter((e: { search: { mode: string } }) => e.search.mode === 'match').map((e: { resource: { id: string } }) => e.resource.id);

beforeAll(async () => {
  s = await startTestServer();
  net = await registerNetwork(s, [{ ods: 'RRK' }, { ods: 'RJE' }, { ods: 'RXK' }]);
  clinician = await s.tokenFor('RXK', 'clinician');
  const rrk = await s.tokenFor('RRK', 'publisher');
  const rje = await s.tokenFor('RJE', 'publisher');
  const studies: [string, string, string[], string, string?][] = [
    ['RRK', '2021-03-04T10:00:00Z', ['CT'], 'A1'],
    ['RRK', '2022-07-15T10:00:00Z', ['MR'], 'A2'],
    ['RJE', '2023-01-01T10:00:00Z', ['CT', 'PT'], 'A3'],
    ['RJE', '2023-12-31T23:00:00Z', ['US'], 'A4'],
    ['RRK', '2024-06', ['DX'], 'A5'],
  ];
  for (const [ods, started, modality, accession] of studies) {
    const res = await post(s, ods === 'RRK' ? rrk : rje, '/fhir/ImagingStudy', aStudy({ endpointId: net[ods]!.endpointId, nhs: P, started, modality, accession, description: accession }));
    if (res.status !== 201) throw new Error(res.text);
  }
  await post(s, rrk, '/fhir/ImagingStudy', aStudy({ endpointId: net.RRK!.endpointId, nhs: patient(101) }));
  await post(s, rrk, '/fhir/DocumentReference', aDocument({ custodian: 'RRK', nhs: P, category: 'report', type: { system: 'http://snomed.info/sct', code: '4201000179104' } }));
  await post(s, rrk, '/fhir/DocumentReference', aDocument({ custodian: 'RRK', nhs: P, studyUid: '1.2.826.0.1.3680043.10.9.55.1' }));
});
afterAll(async () => s.close());

const descriptions = async (query: string): Promise<string[]> => {
  const res = await get(s, clinician, `/fhir/ImagingStudy?${Q}&${query}`);
  expect(res.status).toBe(200);
  return res.body.entry?.map((e: { resource: { description: string } }) => e.resource.description) ?? [];
};

describe('ImagingStudy search', () => {
  it('when searching by patient, then only that patient\'s pointers come back, newest first', async () => {
    expect(await descriptions('')).toEqual(['A5', 'A4', 'A3', 'A2', 'A1']);
  });

  it('when the subject:identifier and patient forms are used, then they find the same pointers', async () => {
    const a = await get(s, clinician, `/fhir/ImagingStudy?subject:identifier=https://fhir.nhs.uk/Id/nhs-number|${P}`);
    const b = await get(s, clinician, `/fhir/ImagingStudy?patient=Patient/${P}`);
    expect(ids(a).sort()).toEqual(ids(b).sort());
    expect(ids(a)).toHaveLength(5);
  });

  it.each([
    ['modality=CT', ['A3', 'A1']],
    ['modality=http://dicom.nema.org/resources/ontology/DCM|PT', ['A3']],
    ['modality=US,DX', ['A5', 'A4']],
    ['started=2023', ['A4', 'A3']],
    ['started=ge2023-01-01', ['A5', 'A4', 'A3']],
    ['started=lt2022', ['A1']],
    ['started=gt2023-12-31', ['A5']],
    ['started=2024-06', ['A5']],
    ['started=ne2023', ['A5', 'A2', 'A1']],
    ['started=ge2022&started=lt2023', ['A2']],
    ['custodian=RJE', ['A4', 'A3']],
    ['custodian=https://fhir.nhs.uk/Id/ods-organization-code|RRK', ['A5', 'A2', 'A1']],
    ['status=available', ['A5', 'A4', 'A3', 'A2', 'A1']],
    ['identifier:of-type=http://terminology.hl7.org/CodeSystem/v2-0203|ACSN|A2', ['A2']],
    ['_sort=started', ['A1', 'A2', 'A3', 'A4', 'A5']],
  ])('when filtering by %s, then exactly the matching pointers come back', async (query, expected) => {
    expect(await descriptions(query)).toEqual(expected);
  });

  it('when searching by Study Instance UID (SMART imaging access), then it works without a patient', async () => {
    const all = await get(s, clinician, `/fhir/ImagingStudy?${Q}`);
    const uid = all.body.entry[0].resource.identifier[0].value;
    const res = await get(s, clinician, `/fhir/ImagingStudy?identifier=${uid}`);
    expect(ids(res)).toEqual([all.body.entry[0].resource.id]);
  });

  it('when _lastUpdated=gt is used with the patient, then only newer pointers come back', async () => {
    expect(await descriptions('_lastUpdated=gt2000-01-01')).toHaveLength(5);
    expect(await descriptions('_lastUpdated=gt2999-01-01')).toHaveLength(0);
  });

  it('when no patient or identifier is given, then 400: not a bulk export', async () => {
    const res = await get(s, clinician, '/fhir/ImagingStudy?modality=CT');
    expect(res.status).toBe(400);
    expect(spineCode(res)).toBe('INVALID_PARAMETER');
  });

  it('when paging with _count=2, then next links walk all pages and previous walks back, with no repeats', async () => {
    const seen: string[] = [];
    let res = await get(s, clinician, `/fhir/ImagingStudy?${Q}&_count=2`);
    const pages = [ids(res)];
    seen.push(...ids(res));
    let next = res.body.link.find((l: { relation: string }) => l.relation === 'next');
    while (next) {
      res = await get(s, clinician, next.url.replace(s.baseUrl, ''));
      pages.push(ids(res));
      seen.push(...ids(res));
      next = res.body.link.find((l: { relation: string }) => l.relation === 'next');
    }
    expect(seen).toHaveLength(5);
    expect(new Set(seen).size).toBe(5);
    expect(pages.map((p) => p.length)).toEqual([2, 2, 1]);
    const prev = res.body.link.find((l: { relation: string }) => l.relation === 'previous');
    const back = await get(s, clinician, prev.url.replace(s.baseUrl, ''));
    expect(ids(back)).toEqual(pages[1]);
  });

  it('when a pointer is inserted between pages, then the next page is unaffected (keyset paging)', async () => {
    const first = await get(s, clinician, `/fhir/ImagingStudy?${Q}&_count=2`);
    const rrk = await s.tokenFor('RRK', 'publisher');
    await post(s, rrk, '/fhir/ImagingStudy', aStudy({ endpointId: net.RRK!.endpointId, nhs: P, started: '2030-01-01', description: 'NEW' }));
    const next = first.body.link.find((l: { relation: string }) => l.relation === 'next');
    const second = await get(s, clinician, next.url.replace(s.baseUrl, ''));
    expect(second.body.entry.map((e: { resource: { description: string } }) => e.resource.description)).toEqual(['A3', 'A2']);
    await s.db.query(`delete from imaging_study where resource like '%"NEW"%'`);
  });

  it('when the first page holds every match, then the Bundle says the total; when more pages follow, only _total=accurate counts them', async () => {
    const all = await get(s, clinician, `/fhir/ImagingStudy?${Q}`);
    expect(all.body.total).toBe(5);
    const paged = await get(s, clinician, `/fhir/ImagingStudy?${Q}&_count=2`);
    expect(paged.body.total).toBeUndefined();
    const next = paged.body.link.find((l: { relation: string }) => l.relation === 'next');
    const last = await get(s, clinician, next.url.replace(s.baseUrl, ''));
    expect(last.body.total).toBeUndefined();
    const counted = await get(s, clinician, `/fhir/ImagingStudy?${Q}&_count=2&_total=accurate`);
    expect(counted.body.total).toBe(5);
    expect(ids(counted)).toHaveLength(2);
    const nobody = await get(s, clinician, `/fhir/ImagingStudy?patient.identifier=https://fhir.nhs.uk/Id/nhs-number|${patient(199)}`);
    expect(nobody.body.total).toBe(0);
  });

  it('when _summary=count, then the total and no entries', async () => {
    const res = await get(s, clinician, `/fhir/ImagingStudy?${Q}&_summary=count`);
    expect(res.body.total).toBe(5);
    expect(res.body.entry).toBeUndefined();
  });

  it('when _include=ImagingStudy:endpoint, then each endpoint is included once', async () => {
    const res = await get(s, clinician, `/fhir/ImagingStudy?${Q}&_include=ImagingStudy:endpoint`);
    const included = res.body.entry.filter((e: { search: { mode: string } }) => e.search.mode === 'include');
    expect(included.map((e: { resource: { resourceType: string } }) => e.resource.resourceType)).toEqual(['Endpoint', 'Endpoint']);
  });

  it('when an unknown parameter is sent, then it is ignored with a warning and left out of self; strict handling refuses it', async () => {
    const res = await get(s, clinician, `/fhir/ImagingStudy?${Q}&colour=blue`);
    expect(res.status).toBe(200);
    const outcome = res.body.entry.find((e: { search: { mode: string } }) => e.search.mode === 'outcome');
    expect(outcome.resource.issue[0].severity).toBe('warning');
    expect(res.body.link[0].url).not.toContain('colour');
    const strict = await request(s.baseUrl).get(`/fhir/ImagingStudy?${Q}&colour=blue`).set('authorization', `Bearer ${clinician}`).set('prefer', 'handling=strict');
    expect(strict.status).toBe(400);
    expect(spineCode(strict)).toBe('INVALID_PARAMETER');
  });

  it('when searched by POST _search with a form body, then the same results', async () => {
    const res = await request(s.baseUrl).post('/fhir/ImagingStudy/_search').set('authorization', `Bearer ${clinician}`).type('form').send({ 'patient.identifier': P, modality: 'CT' });
    expect(res.status).toBe(200);
    expect(res.body.entry.map((e: { resource: { description: string } }) => e.resource.description)).toEqual(['A3', 'A1']);
  });
});

describe('DocumentReference search (NRL, ITI-67, MADO)', () => {
  it('when searching by patient, then current pointers of both categories come back', async () => {
    const res = await get(s, clinician, `/fhir/DocumentReference?subject:identifier=https://fhir.nhs.uk/Id/nhs-number|${P}`);
    expect(ids(res)).toHaveLength(2);
  });

  it('when filtering by type, then system and code must both match (NRL checked the system only)', async () => {
    const right = await get(s, clinician, `/fhir/DocumentReference?${Q}&type=http://snomed.info/sct|4201000179104`);
    expect(ids(right)).toHaveLength(1);
    const wrongCode = await get(s, clinician, `/fhir/DocumentReference?${Q}&type=http://snomed.info/sct|999999`);
    expect(ids(wrongCode)).toHaveLength(0);
  });

  it('when filtering by category and by study-instance-uid, then the matching pointer comes back', async () => {
    expect(ids(await get(s, clinician, `/fhir/DocumentReference?${Q}&category=http://snomed.info/sct|721981007`))).toHaveLength(1);
    expect(ids(await get(s, clinician, `/fhir/DocumentReference?study-instance-uid=urn:oid:1.2.826.0.1.3680043.10.9.55.1`))).toHaveLength(1);
    expect(ids(await get(s, clinician, `/fhir/DocumentReference?${Q}&custodian:identifier=https://fhir.nhs.uk/Id/ods-organization-code|RJE`))).toHaveLength(0);
  });
});

describe('Organization and Endpoint search', () => {
  it('when searching endpoints by organisation ODS code and connection type, then the trust\'s WADO-RS endpoint comes back', async () => {
    const res = await get(s, clinician, '/fhir/Endpoint?organization:identifier=https://fhir.nhs.uk/Id/ods-organization-code|RJE&connection-type=dicom-wado-rs');
    expect(ids(res)).toEqual([net.RJE!.endpointId]);
    const org = await get(s, clinician, '/fhir/Organization?identifier=https://fhir.nhs.uk/Id/ods-organization-code|RRK');
    expect(ids(org)).toEqual([net.RRK!.orgId]);
    expect(ids(await get(s, clinician, '/fhir/Organization?name=trust'))).toHaveLength(3);
  });
});
