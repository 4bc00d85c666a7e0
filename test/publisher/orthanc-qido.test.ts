jest.mock('fhir-kit-client', () => jest.requireActual('./support/fhir-kit-client-cjs').loadFhirKitClient(), { virtual: true });

import { mkdtemp, rm, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { StudyCollector, mapStudy, parsePart10, type MappedStudy, type MapOptions } from '../../src/dicom';
import { runPublish } from '../../src/publisher';
import { QidoClient } from '../../src/publisher/qido';
import { defaultRetryPolicy } from '../../src/publisher/retry';
import { testNhsNumber } from '../../src/registry/nhs-number';
import { generateStudy, presetStudy, type StudyKind } from '../../test-data/generate-dicom';
import { FakeFhirServer, captureIo } from './fake-fhir-server';
import { startOrthanc, type OrthancInstance } from './orthanc';

jest.setTimeout(30_000);

type Generated = ReturnType<typeof generateStudy>;
const studyOf = (kind: StudyKind, n: number): Generated => generateStudy(presetStudy(kind, n, 2));

describe('QIDO-RS reader against two Orthanc PACS', () => {
  let trustA: OrthancInstance;
  let trustB: OrthancInstance;
  let fhir: FakeFhirServer;
  let dir: string;
  const a = { ct: studyOf('CT', 1), mr: studyOf('MR', 2), petct: studyOf('PT+CT', 3), sr: studyOf('CT+SR', 4) };
  const b = {
    pdf: studyOf('MR+PDF', 1), ct: studyOf('CT', 5),
    // A trust that keeps its hospital number in PatientID and the NHS number in OtherPatientIDsSequence.
    mrn: generateStudy(presetStudy('CT', 7, 1, { patientId: 'MRN0007', otherPatientIds: [{ id: testNhsNumber(7), issuer: 'NHS' }] })),
  };

  beforeAll(async () => {
    [trustA, trustB] = await Promise.all([startOrthanc('TRUST_A'), startOrthanc('TRUST_B')]);
    for (const s of Object.values(a)) for (const i of s.instances) await trustA.upload(i.bytes);
    for (const s of Object.values(b)) for (const i of s.instances) await trustB.upload(i.bytes);
    fhir = await new FakeFhirServer().start();
    dir = await mkdtemp(path.join(os.tmpdir(), 'locus-qido-'));
  });
  afterAll(async () => {
    await Promise.all([trustA?.stop(), trustB?.stop(), fhir?.stop()]);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const options = (pacs: OrthancInstance, ods: string): MapOptions => ({
    custodianOds: ods, wadoBaseUrl: pacs.dicomWebRoot, endpointReference: `Endpoint/${ods}`, patientIdentity: { source: 'PatientID' },
  });
  const fromFiles = (s: Generated, o: MapOptions): MappedStudy => {
    const c = new StudyCollector();
    for (const i of s.instances) c.add(parsePart10(i.bytes).dataset);
    return mapStudy(c.values()[0]!, o) as MappedStudy;
  };
  async function fromQido(pacs: OrthancInstance, uid: string, o: MapOptions): Promise<MappedStudy> {
    const qido = new QidoClient(pacs.dicomWebRoot, defaultRetryPolicy());
    for await (const page of qido.studiesSince('20000101')) {
      const hit = page.find((ds) => JSON.stringify(ds['0020000D']).includes(uid));
      if (hit) return mapStudy((await qido.readStudy(hit))!, o) as MappedStudy;
    }
    throw new Error(`study ${uid} not found by QIDO`);
  }

  it('when studies are read through QIDO-RS, then the pointers equal those mapped from the files', async () => {
    const o = options(trustA, 'RRK');
    for (const s of [a.mr, a.sr]) expect(await fromQido(trustA, s.studyInstanceUid, o)).toEqual(fromFiles(s, o));
    const ob = options(trustB, 'RJE');
    expect(await fromQido(trustB, b.pdf.studyInstanceUid, ob)).toEqual(fromFiles(b.pdf, ob));
  });

  it('when a multi-modality study and reports are read, then modalities, series counts and reports are right', async () => {
    const o = options(trustA, 'RRK');
    const petct = await fromQido(trustA, a.petct.studyInstanceUid, o);
    expect(petct.imagingStudy.modality.map((c) => c.code)).toEqual(['CT', 'PT']);
    expect(petct.imagingStudy.numberOfSeries).toBe(2);
    expect(petct.imagingStudy.numberOfInstances).toBe(4);
    const sr = await fromQido(trustA, a.sr.studyInstanceUid, o);
    expect(sr.imagingStudy.modality.map((c) => c.code)).toEqual(['CT']);
    expect(sr.imagingStudy.series.map((s) => s.modality.code)).toEqual(['CT', 'SR']);
    expect(sr.documentReferences.map((d) => d.docStatus)).toEqual([undefined, 'final']);
    const pdf = await fromQido(trustB, b.pdf.studyInstanceUid, options(trustB, 'RJE'));
    expect(pdf.documentReferences[1]!.content[0]!.attachment.url).toMatch(new RegExp(`^${trustB.dicomWebRoot}/studies/${b.pdf.studyInstanceUid}/series/[\\d.]+/instances/[\\d.]+$`));
    // The same patient at both trusts: one NHS number, two custodians.
    expect(pdf.imagingStudy.subject.identifier.value).toBe(testNhsNumber(1));
  });

  it('when the NHS number is in OtherPatientIDsSequence, then QIDO + instance metadata find it', async () => {
    const o: MapOptions = { ...options(trustB, 'RJE'), patientIdentity: { source: 'OtherPatientIDsSequence', issuer: 'NHS' } };
    const mapped = await fromQido(trustB, b.mrn.studyInstanceUid, o);
    expect(mapped.imagingStudy.subject.identifier.value).toBe(testNhsNumber(7));
    expect(mapStudy((await new QidoClient(trustB.dicomWebRoot, defaultRetryPolicy()).readStudy({ '0020000D': { vr: 'UI', Value: [b.ct.studyInstanceUid] } }))!, o))
      .toMatchObject({ skipped: 'no-patient-id' });
  });

  it('when publishing from QIDO twice, then the second run sends nothing, and a new study is picked up after', async () => {
    const state = path.join(dir, 'state.json');
    const args = ['--from-qido', trustA.dicomWebRoot, '--since', '2024-01-01', '--state', state, '--fhir', fhir.fhirBase,
      '--org', 'RRK', '--token', 'test-token', '--endpoint', 'Endpoint/rrk', '--wado', trustA.dicomWebRoot];
    const first = captureIo();
    expect(await runPublish(args, first.io, { env: {} })).toBe(0);
    expect(first.out()).toContain('published 4 · updated 0 · unchanged 0 · skipped 0 · failed 0');
    const entries = fhir.transactions.flatMap((t) => t.bundle.entry);
    expect(entries.filter((e) => e.resource.resourceType === 'ImagingStudy')).toHaveLength(4);
    expect(entries.filter((e) => e.resource.resourceType === 'DocumentReference')).toHaveLength(5);
    const saved = JSON.parse(await readFile(state, 'utf8')) as { sources: Record<string, { watermark: string; studies: object }> };
    expect(saved.sources[trustA.dicomWebRoot]!.watermark).toBe('20240115');
    expect(JSON.stringify(saved)).not.toContain(testNhsNumber(1)); // fingerprints are hashes

    const sent = fhir.transactions.length;
    const second = captureIo();
    expect(await runPublish(args, second.io, { env: {} })).toBe(0);
    expect(fhir.transactions).toHaveLength(sent);
    expect(second.out()).toContain('querying');
    expect(second.out()).toContain('from 20240114'); // watermark minus a day
    expect(second.out()).toContain('4 studies already published and unchanged since the last run');

    const late = generateStudy(presetStudy('MR', 6, 1, { studyDate: '20240116' }));
    for (const i of late.instances) await trustA.upload(i.bytes);
    const third = captureIo();
    expect(await runPublish(args, third.io, { env: {} })).toBe(0);
    expect(fhir.transactions).toHaveLength(sent + 1);
    const newEntries = fhir.transactions[sent]!.bundle.entry;
    expect(newEntries[0]!.request.url).toBe(`ImagingStudy?identifier=urn:dicom:uid|urn:oid:${late.studyInstanceUid}`);
    expect(third.out()).toContain('published 1');
  });
});
