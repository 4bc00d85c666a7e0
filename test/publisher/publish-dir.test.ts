jest.mock('fhir-kit-client', () => jest.requireActual('./support/fhir-kit-client-cjs').loadFhirKitClient(), { virtual: true });

import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { runPublish } from '../../src/publisher';
import { testNhsNumber } from '../../src/registry/nhs-number';
import { generateStudy, presetStudy, writeInstances, STUDY_KINDS } from '../../test-data/generate-dicom';
import { FakeFhirServer, captureIo } from './fake-fhir-server';

describe('locus publish --from-dir', () => {
  let dir: string;
  let server: FakeFhirServer;
  const studyUids: string[] = [];
  const noSleep = { sleep: async (): Promise<void> => {}, env: {} };

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'locus-publish-'));
    for (const [i, kind] of STUDY_KINDS.entries()) {
      const study = generateStudy(presetStudy(kind, i + 1, 2, { patientName: 'Ångström^Zoë' }));
      studyUids.push(study.studyInstanceUid);
      await writeInstances(dir, study.instances);
    }
    await mkdir(path.join(dir, 'junk'));
    await writeFile(path.join(dir, 'junk', 'notes.txt'), 'not DICOM');
    const [first] = generateStudy(presetStudy('CT', 99, 1)).instances;
    await writeFile(path.join(dir, 'junk', 'truncated.dcm'), first!.bytes.subarray(0, 200));
  });
  afterAll(async () => { await rm(dir, { recursive: true, force: true }); });
  beforeEach(async () => { server = await new FakeFhirServer().start(); });
  afterEach(async () => { await server.stop(); });

  const base = (): string[] => ['--from-dir', dir, '--fhir', server.fhirBase, '--org', 'RRK', '--token', 'test-token'];

  it('when a folder is published, then each study is PUT conditionally in one transaction and the summary counts them', async () => {
    const { io, out, err } = captureIo();
    const code = await runPublish(base(), io, noSleep);
    expect(err()).toBe('');
    expect(code).toBe(0);
    expect(server.transactions).toHaveLength(1);
    const { bundle, authorization } = server.transactions[0]!;
    expect(authorization).toBe('Bearer test-token');
    const urls = bundle.entry.map((e) => e.request.url);
    for (const uid of studyUids) {
      expect(urls).toContain(`ImagingStudy?identifier=urn:dicom:uid|urn:oid:${uid}`);
      expect(urls).toContain(`DocumentReference?identifier=urn:ietf:rfc:3986|urn:oid:${uid}`);
    }
    expect(bundle.entry.every((e) => e.request.method === 'PUT')).toBe(true);
    // 5 studies + 5 study DocumentReferences + 2 reports (SR, PDF).
    expect(bundle.entry).toHaveLength(12);
    // The Endpoint was looked up by ODS code and its address used for attachment URLs.
    expect(decodeURIComponent(server.searches[0]!)).toContain('organization:identifier=https://fhir.nhs.uk/Id/ods-organization-code|RRK');
    expect(server.searches[0]).toContain('connection-type=dicom-wado-rs');
    const studyDoc = bundle.entry.find((e) => e.request.url === `DocumentReference?identifier=urn:ietf:rfc:3986|urn:oid:${studyUids[0]}`)!;
    expect(studyDoc.resource).toMatchObject({ content: [{ attachment: { url: `http://pacs.rrk.test/dicom-web/studies/${studyUids[0]}` } }] });
    expect(bundle.entry.find((e) => e.resource.resourceType === 'ImagingStudy')!.resource).toMatchObject({ endpoint: [{ reference: 'Endpoint/ep-rrk' }] });
    expect(out()).toContain('published 5 · updated 0 · unchanged 0 · skipped 2 · failed 0');
    expect(out()).toContain('skipped 2: unreadable-or-not-dicom-file');
    expect(out()).toMatch(/skipped file junk[/\\]truncated\.dcm/);
    // Never patient data in the output.
    for (let i = 1; i <= 5; i++) expect(out()).not.toContain(testNhsNumber(i));
    expect(out()).not.toMatch(/Ångström|Zoë/);
  });

  it('when the same folder is published again, then every study is unchanged', async () => {
    await runPublish(base(), captureIo().io, noSleep);
    const { io, out } = captureIo();
    expect(await runPublish(base(), io, noSleep)).toBe(0);
    expect(out()).toContain('published 0 · updated 0 · unchanged 5');
  });

  it('when the server answers 429 then 503, then the publisher backs off (honouring Retry-After) and succeeds', async () => {
    server.failures = [{ status: 429, retryAfter: '2' }, { status: 503 }];
    const sleeps: number[] = [];
    const { io, out } = captureIo();
    const code = await runPublish(base(), io, { env: {}, random: () => 0.5, sleep: async (ms) => { sleeps.push(ms); } });
    expect(code).toBe(0);
    expect(server.transactions).toHaveLength(3);
    expect(sleeps).toEqual([2000, 500]); // Retry-After: 2 s; then full jitter 0.5 × (500 ms × 2^1)
    expect(out()).toContain('retry 1/5 in 2.0 s after HTTP 429');
    expect(out()).toContain('published 5');
  });

  it('when retries run out, then the studies are reported failed and the exit status is 1', async () => {
    server.failures = Array.from({ length: 3 }, () => ({ status: 503 }));
    const { io, out } = captureIo();
    expect(await runPublish([...base(), '--max-retries', '2'], io, noSleep)).toBe(1);
    expect(out()).toContain('failed 5: HTTP 503');
    expect(out()).toContain(`study ${studyUids[0]}`);
  });

  it('when the server rejects one study, then the batch is retried study by study and only that one fails', async () => {
    server.rejectStudyUid = studyUids[2]!;
    const { io, out } = captureIo();
    expect(await runPublish(base(), io, noSleep)).toBe(1);
    expect(server.transactions).toHaveLength(1 + 5);
    expect(out()).toContain('published 4');
    expect(out()).toContain('failed 1: HTTP 422 (processing INVALID_RESOURCE ImagingStudy.series)');
    expect(out()).not.toContain('9990000018'); // the server's diagnostics are never echoed
  });

  it('when --batch-size is 2, then 5 studies go in 3 transactions', async () => {
    expect(await runPublish([...base(), '--batch-size', '2'], captureIo().io, noSleep)).toBe(0);
    expect(server.transactions.map((t) => t.bundle.entry.filter((e) => e.resource.resourceType === 'ImagingStudy').length)).toEqual([2, 2, 1]);
  });

  it('when --dry-run is given, then the Bundles are printed as JSON and nothing is sent', async () => {
    const { io, out, err } = captureIo();
    const code = await runPublish([...base(), '--dry-run', '--endpoint', 'Endpoint/ep-x', '--wado', 'https://pacs.example/wado'], io, noSleep);
    expect(code).toBe(0);
    expect(server.transactions).toHaveLength(0);
    const bundles = out().trim().split('\n').map((l) => JSON.parse(l) as { type: string; entry: unknown[] });
    expect(bundles).toHaveLength(1);
    expect(bundles[0]!.type).toBe('transaction');
    expect(bundles[0]!.entry).toHaveLength(12);
    expect(err()).toContain('dry run: 5 studies mapped');
  });

  it('when the token comes from LOCUS_TOKEN or client credentials, then it is sent', async () => {
    const args = ['--from-dir', dir, '--fhir', server.fhirBase, '--org', 'RRK'];
    expect(await runPublish(args, captureIo().io, { ...noSleep, env: { LOCUS_TOKEN: 'test-token' } })).toBe(0);
    const cc = ['--client-id', 'client-1', '--client-secret', 'secret-1', '--token-url', `${server.baseUrl}/token`];
    expect(await runPublish([...args, ...cc], captureIo().io, noSleep)).toBe(0);
    expect(server.tokenRequests).toBe(1);
    expect(server.transactions.map((t) => t.authorization)).toEqual(['Bearer test-token', 'Bearer test-token']);
  });

  it('when the token is wrong, then the run fails with exit status 1 and no retries', async () => {
    const { io, err } = captureIo();
    expect(await runPublish([...base().slice(0, -1), 'wrong'], io, noSleep)).toBe(1);
    expect(err()).toContain('HTTP 401');
  });

  it('when stdout is a TTY, then a progress bar with studies/s and ETA is drawn', async () => {
    const { io, out } = captureIo(true);
    expect(await runPublish(base(), io, noSleep)).toBe(0);
    expect(out()).toMatch(/\r\x1b\[2K\[#+\] 5\/5 studies · [\d.]+ studies\/s · ETA 0:00/);
  });

  it('when arguments are wrong, then usage errors exit with 2', async () => {
    const { io, err } = captureIo();
    expect(await runPublish(['--from-dir', dir], io, noSleep)).toBe(2);
    expect(err()).toContain('--org');
    expect(await runPublish(['--from-dir', dir, '--from-qido', 'http://x/dicom-web', '--org', 'RRK'], io, noSleep)).toBe(2);
    expect(err()).toContain('exactly one of --from-dir or --from-qido');
    expect(await runPublish(['--bogus'], io, noSleep)).toBe(2);
    const help = captureIo();
    expect(await runPublish(['--help'], help.io, noSleep)).toBe(0);
    expect(help.out()).toContain('Usage: locus publish');
  });
});
