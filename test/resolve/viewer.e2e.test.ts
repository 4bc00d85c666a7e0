jest.mock('fhir-kit-client', () => jest.requireActual('../publisher/support/fhir-kit-client-cjs').loadFhirKitClient(), { virtual: true });

/**
 * End to end in headless Chromium without JavaScript: two trusts' PACS (Orthanc) publish into
 * Locus; a clinician signs in on /viewer, finds the patient's imaging across both trusts, opens a
 * study, retrieves its metadata through the DICOMweb gateway with the retrieval token the page
 * handed out, and it matches what the PACS itself holds. Withheld imaging shows the break-glass
 * notice; a stated reason reveals it. Screenshots go to test-output/.
 */
import { mkdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import type { Browser } from 'playwright-core';
import { aConsent } from '../../src/demo/seed';
import { runPublish } from '../../src/publisher';
import { testNhsNumber } from '../../src/registry/nhs-number';
import { generateStudy, presetStudy } from '../../test-data/generate-dicom';
import type { StudyKind } from '../../test-data/generate-dicom';
import { anEndpoint, anOrganization, post } from '../helpers/fixtures';
import { startTestServer } from '../helpers/server';
import type { TestServer } from '../helpers/server';
import { captureIo } from '../publisher/fake-fhir-server';
import { startOrthanc } from '../publisher/orthanc';
import type { OrthancInstance } from '../publisher/orthanc';

jest.setTimeout(120_000);

const OUT = path.join(__dirname, '../../test-output');
const SHARED = testNhsNumber(1);
const OPTED_OUT = testNhsNumber(2);
let s: TestServer;
let browser: Browser;
let dir: string;
const pacs: Record<string, OrthancInstance> = {};
const plan: Record<string, [StudyKind, number, string][]> = {
  RRK: [['CT', 1, '20230310'], ['CT+SR', 1, '20240115'], ['CT', 2, '20250102']],
  RJE: [['MR+PDF', 1, '20250620']],
};
let ctUid = '';

beforeAll(async () => {
  s = await startTestServer();
  dir = await mkdtemp(path.join(os.tmpdir(), 'locus-viewer-e2e-'));
  const admin = await s.tokenFor('ADMIN', 'admin');
  for (const [ods, studies] of Object.entries(plan)) {
    pacs[ods] = await startOrthanc(ods);
    for (const [kind, n, date] of studies) {
      const study = generateStudy(presetStudy(kind, n, 2, { studyDate: date, seed: `viewer-${ods}-${kind}-${n}` }));
      if (ods === 'RRK' && kind === 'CT' && n === 1) ctUid = study.studyInstanceUid;
      for (const i of study.instances) await pacs[ods]!.upload(i.bytes);
    }
    const org = await post(s, admin, '/fhir/Organization', anOrganization(ods, 'network-trust', ods === 'RRK' ? 'University Hospitals Birmingham' : 'University Hospitals of North Midlands'));
    expect((await post(s, admin, '/fhir/Endpoint', anEndpoint(org.body.id, pacs[ods]!.dicomWebRoot))).status).toBe(201);
    const { io, err } = captureIo();
    const code = await runPublish(['--from-qido', pacs[ods]!.dicomWebRoot, '--since', '2020-01-01', '--state', path.join(dir, `${ods}.json`), '--fhir', s.fhirBase, '--org', ods, '--token', await s.tokenFor(ods, 'publisher')], io, { env: {} });
    expect({ code, err: err() }).toEqual({ code: 0, err: '' });
  }
  expect((await post(s, admin, '/fhir/Consent', aConsent(OPTED_OUT, [], 'RRK'))).status).toBe(201);
  mkdirSync(OUT, { recursive: true });
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
});
afterAll(async () => {
  await browser?.close();
  await Promise.all(Object.values(pacs).map((p) => p.stop()));
  await s?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

type Metadata = Record<string, { vr: string; Value?: unknown[] }>[];
const sopUids = (m: Metadata): string[] => m.map((i) => i['00080018']!.Value![0] as string).sort();

describe('prior imaging in a browser without JavaScript', () => {
  it('when a clinician searches, opens a study through the gateway, and breaks the glass for withheld imaging, then each step works from plain HTML', async () => {
    const context = await browser.newContext({ javaScriptEnabled: false, viewport: { width: 1280, height: 1000 } });
    const page = await context.newPage();
    try {
      await page.goto(`${s.baseUrl}/viewer`);
      await page.fill('#token', await s.tokenFor('RJE', 'clinician', { sub: 'dr.e2e', name: 'Dr Emma Evans', purposeOfUse: 'ETREAT' }));
      await page.click('button:has-text("Sign in")');
      await page.waitForSelector('h1:has-text("Prior imaging")');
      expect(await page.textContent('.locus-who')).toContain('Dr Emma Evans (RJE)');

      await page.fill('#nhs', SHARED);
      await page.click('button:has-text("Find imaging")');
      await page.waitForSelector('.locus-timeline');
      expect(await page.locator('.locus-year-heading').allTextContents()).toEqual(['2025', '2024', '2023']);
      expect(await page.locator('li.locus-study').count()).toBe(3);
      const custodians = await page.locator('.locus-custodian').allTextContents();
      expect(custodians).toEqual(expect.arrayContaining(['University Hospitals Birmingham (RRK)', 'University Hospitals of North Midlands (RJE)']));
      expect(await page.locator('.locus-report', { hasText: 'Report available' }).count()).toBe(2);
      expect(await page.locator('.locus-modality').allTextContents()).toEqual(expect.arrayContaining(['MR, DOC', 'CT']));
      await page.screenshot({ path: path.join(OUT, 'viewer-timeline.png'), fullPage: true });

      // Filter: MR only.
      await page.selectOption('#modality', 'MR');
      await page.click('button:has-text("Find imaging")');
      await page.waitForSelector('.locus-count');
      expect(await page.locator('li.locus-study').count()).toBe(1);
      await page.selectOption('#modality', '');
      await page.click('button:has-text("Find imaging")');
      await page.waitForSelector('.locus-count');

      // Open the 2023 CT held by RRK, and retrieve it through the gateway as a DICOMweb client would.
      await page.locator('section.locus-year', { hasText: '2023' }).locator('a.locus-open').click();
      await page.waitForSelector('h1:has-text("Study ready to open")');
      expect(await page.textContent('.locus-uid')).toBe(ctUid);
      expect(await page.getAttribute('a.locus-launch', 'href')).toBe(`http://localhost:3000/viewer?StudyInstanceUIDs=${ctUid}`);
      const gatewayUrl = (await page.textContent('.locus-gateway-url'))!;
      expect(gatewayUrl).toBe(`${s.baseUrl}/dicomweb/RRK/studies/${ctUid}`);
      const token = (await page.inputValue('#retrieval-token')).trim();
      const viaGateway = await page.request.get(`${gatewayUrl}/metadata`, { headers: { authorization: `Bearer ${token}`, accept: 'application/dicom+json' } });
      expect(viaGateway.status()).toBe(200);
      const direct = (await (await fetch(`${pacs.RRK!.dicomWebRoot}/studies/${ctUid}/metadata`)).json()) as Metadata;
      const gatewayMetadata = (await viaGateway.json()) as Metadata;
      expect(gatewayMetadata).toHaveLength(2);
      expect(sopUids(gatewayMetadata)).toEqual(sopUids(direct));
      expect(gatewayMetadata.map((i) => i['0020000D']!.Value![0])).toEqual([ctUid, ctUid]);
      expect(gatewayMetadata.map((i) => i['00100020']!.Value![0])).toEqual([SHARED, SHARED]);
      const byUid = (m: Metadata): Map<string, unknown> => new Map(m.map((i) => [i['00080018']!.Value![0] as string, i]));
      expect(byUid(gatewayMetadata)).toEqual(byUid(direct));
      // The whole study, multipart, through the gateway: the same bytes as from the PACS.
      const study = await page.request.get(gatewayUrl, { headers: { authorization: `Bearer ${token}`, accept: 'multipart/related; type="application/dicom"' } });
      expect(study.status()).toBe(200);
      expect(study.headers()['content-type']).toMatch(/^multipart\/related/);
      const body = await study.body();
      for (const uid of sopUids(direct)) expect(body.includes(Buffer.from(uid))).toBe(true);
      // The token is bound to this study: the other RRK study is refused.
      const otherUid = generateStudy(presetStudy('CT+SR', 1, 2, { studyDate: '20240115', seed: 'viewer-RRK-CT+SR-1' })).studyInstanceUid;
      expect((await page.request.get(`${s.baseUrl}/dicomweb/RRK/studies/${otherUid}/metadata`, { headers: { authorization: `Bearer ${token}` } })).status()).toBe(403);

      // Withheld imaging: the break-glass notice, then the emergency re-query.
      await page.click('a:has-text("Back to the search")');
      await page.fill('#nhs', OPTED_OUT);
      await page.click('button:has-text("Find imaging")');
      await page.waitForSelector('#break-glass');
      expect(await page.locator('li.locus-study').count()).toBe(0);
      expect(await page.textContent('#break-glass')).toContain('Some imaging is withheld');
      await page.locator('#break-glass').screenshot({ path: path.join(OUT, 'viewer-break-glass.png') });
      await page.screenshot({ path: path.join(OUT, 'viewer-break-glass-page.png'), fullPage: true });
      await page.fill('#reason', 'Unconscious patient in resus, no history');
      await page.click('button:has-text("Show withheld imaging")');
      await page.waitForSelector('.locus-emergency');
      expect(await page.locator('li.locus-study').count()).toBe(1);
      await page.locator('button.locus-open').click();
      await page.waitForSelector('h1:has-text("Study ready to open")');
      expect(await page.textContent('.locus-emergency')).toContain('Unconscious patient in resus');
    } finally {
      await context.close();
    }
    const audited = await s.db.query<{ n: number }>(`select count(*)::int as n from audit_event where subtype = 'dicomweb-retrieve' and agent_user = 'dr.e2e'`);
    expect(audited.rows[0]!.n).toBeGreaterThanOrEqual(4); // two retrievals, each with a start and an end event, and the refusal
    const glass = await s.db.query<{ n: number }>(`select count(*)::int as n from audit_event where agent_user = 'dr.e2e' and break_glass`);
    expect(glass.rows[0]!.n).toBeGreaterThanOrEqual(2);
  });
});
