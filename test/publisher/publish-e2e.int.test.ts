jest.mock('fhir-kit-client', () => jest.requireActual('./support/fhir-kit-client-cjs').loadFhirKitClient(), { virtual: true });

/**
 * End to end: two trusts' PACS (Orthanc) → `locus publish --from-qido` → the real Locus registry
 * → a clinician's search → each pointer's Endpoint + study UID → the holding PACS's WADO-RS.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { runPublish } from '../../src/publisher';
import { testNhsNumber } from '../../src/registry/nhs-number';
import { generateStudy, presetStudy, type StudyKind } from '../../test-data/generate-dicom';
import { startTestServer, type TestServer } from '../helpers/server';
import { anEndpoint, anOrganization, post, get } from '../helpers/fixtures';
import { captureIo } from './fake-fhir-server';
import { startOrthanc, type OrthancInstance } from './orthanc';

jest.setTimeout(60_000);

interface Bundle<T> { entry?: Array<{ resource: T }> }
interface Study { identifier: Array<{ system?: string; value: string }>; endpoint: Array<{ reference: string }>; numberOfInstances: number; numberOfSeries: number; modality: Array<{ code: string }>; series: Array<{ uid: string; instance: Array<{ uid: string }> }> }

describe('publish from two PACS into Locus, then find and retrieve as a clinician', () => {
  let s: TestServer;
  const pacs: Record<string, OrthancInstance> = {};
  let dir: string;
  const nhs = testNhsNumber(1);
  const plan: Record<string, Array<[StudyKind, number]>> = { RRK: [['CT', 1], ['PT+CT', 1], ['CT+SR', 1], ['MR', 2]], RJE: [['MR+PDF', 1]] };

  beforeAll(async () => {
    s = await startTestServer();
    dir = await mkdtemp(path.join(os.tmpdir(), 'locus-e2e-'));
    const admin = await s.tokenFor('ADMIN', 'admin');
    for (const [ods, studies] of Object.entries(plan)) {
      pacs[ods] = await startOrthanc(ods);
      for (const [kind, n] of studies) for (const i of generateStudy(presetStudy(kind, n, 2)).instances) await pacs[ods]!.upload(i.bytes);
      const org = await post(s, admin, '/fhir/Organization', anOrganization(ods));
      if (org.status !== 201) throw new Error(`Organization ${ods}: ${org.status} ${org.text}`);
      const ep = await post(s, admin, '/fhir/Endpoint', anEndpoint(org.body.id, pacs[ods]!.dicomWebRoot));
      if (ep.status !== 201) throw new Error(`Endpoint ${ods}: ${ep.status} ${ep.text}`);
    }
  });
  afterAll(async () => {
    await Promise.all(Object.values(pacs).map((p) => p.stop()));
    await s?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  async function publish(ods: string): Promise<{ code: number; out: string; err: string }> {
    const token = await s.tokenFor(ods, 'publisher');
    const { io, out, err } = captureIo();
    const code = await runPublish(['--from-qido', pacs[ods]!.dicomWebRoot, '--since', '2024-01-01', '--state', path.join(dir, `${ods}.json`),
      '--fhir', s.fhirBase, '--org', ods, '--token', token], io, { env: {} });
    return { code, out: out(), err: err() };
  }

  it('when both trusts publish, then a clinician finds every study and each resolves to its PACS metadata', async () => {
    const rrk = await publish('RRK');
    expect(rrk.err).toBe('');
    expect(rrk).toMatchObject({ code: 0 });
    expect(rrk.out).toContain('published 4 · updated 0 · unchanged 0 · skipped 0 · failed 0');
    const rje = await publish('RJE');
    expect(rje.out).toContain('published 1 ·');

    const clinician = await s.tokenFor('RJE', 'clinician');
    const res = await get(s, clinician, `/fhir/ImagingStudy?patient.identifier=https://fhir.nhs.uk/Id/nhs-number|${nhs}&_include=ImagingStudy:endpoint`);
    expect(res.status).toBe(200);
    const entries = (res.body as Bundle<{ resourceType: string; id: string; address?: string } & Study>).entry ?? [];
    const studies = entries.map((e) => e.resource).filter((r) => r.resourceType === 'ImagingStudy');
    const endpoints = new Map(entries.map((e) => e.resource).filter((r) => r.resourceType === 'Endpoint').map((r) => [`Endpoint/${r.id}`, r.address!]));
    expect(studies).toHaveLength(4); // patient 1: CT, PT+CT, CT+SR at RRK; MR+PDF at RJE
    for (const study of studies) {
      let address = endpoints.get(study.endpoint[0]!.reference);
      if (!address) address = (await get(s, clinician, `/fhir/${study.endpoint[0]!.reference}`)).body.address as string;
      const uid = study.identifier.find((i) => i.system === 'urn:dicom:uid')!.value.replace('urn:oid:', '');
      const metadata = await fetch(`${address}/studies/${uid}/metadata`).then((r) => r.json()) as Array<Record<string, { Value?: unknown[] }>>;
      expect(metadata).toHaveLength(study.numberOfInstances);
      const sopUids = metadata.map((m) => m['00080018']!.Value![0]).sort();
      expect(study.series.flatMap((se) => se.instance.map((i) => i.uid)).sort()).toEqual(sopUids);
      const modalities = [...new Set(metadata.map((m) => m['00080060']!.Value![0] as string))];
      for (const m of study.modality) expect(modalities).toContain(m.code);
    }
    const reports = await get(s, clinician, `/fhir/DocumentReference?patient.identifier=https://fhir.nhs.uk/Id/nhs-number|${nhs}&category=http://snomed.info/sct|721981007`);
    expect(reports.status).toBe(200);
    expect((reports.body as Bundle<unknown>).entry ?? []).toHaveLength(2); // the SR at RRK, the PDF at RJE
  });

  it('when the trusts publish again, then nothing changes', async () => {
    const before = await s.db.query<{ n: number }>('select count(*)::int as n from resource_version');
    for (const ods of Object.keys(plan)) {
      await rm(path.join(dir, `${ods}.json`), { force: true }); // forget the state: every study is re-sent
      const again = await publish(ods);
      expect(again.code).toBe(0);
      expect(again.out).toMatch(/published 0 · updated 0 · unchanged [1-9]\d* · skipped 0 · failed 0/);
    }
    const after = await s.db.query<{ n: number }>('select count(*)::int as n from resource_version');
    expect(after.rows[0]!.n).toBe(before.rows[0]!.n);
  });
});
