import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import type { Browser } from 'playwright-core';
import { insertSyntheticAuditEvents } from '../../bench/audit';
import { startTestServer } from '../helpers/server';
import type { TestServer } from '../helpers/server';
import { NHS, aStudy, get, patient, post, registerNetwork } from '../helpers/fixtures';

let s: TestServer;
let browser: Browser;
const P = patient(601);
const OUT = join(__dirname, '../../test-output');
/** The browser's window, as far as these checks need it (the project's lib has no DOM types). */
interface Css {
  getComputedStyle(el: unknown): { backgroundColor: string };
}

beforeAll(async () => {
  s = await startTestServer();
  const net = await registerNetwork(s, [{ ods: 'RRK' }]);
  expect((await post(s, await s.tokenFor('RRK', 'publisher'), '/fhir/ImagingStudy', aStudy({ nhs: P, endpointId: net.RRK!.endpointId }))).status).toBe(201);
  // Two weeks of history from fifteen trusts, then today's real requests on top.
  await insertSyntheticAuditEvents(s.db, 840, { perDay: 60 });
  await get(s, await s.tokenFor('RRK', 'clinician', { sub: '<img src=x onerror=alert(1)>' }), `/fhir/ImagingStudy?patient.identifier=${NHS}|${P}`);
  await get(s, await s.tokenFor('RJE', 'clinician', { sub: 'dr.emergency', purposeOfUse: 'ETREAT', breakGlassReason: 'Unconscious patient in resus' }), `/fhir/ImagingStudy?patient.identifier=${NHS}|${P}`);
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
}, 60_000);
afterAll(async () => {
  await browser?.close();
  await s?.close();
});

describe('the audit review page in a browser without JavaScript', () => {
  it('when an auditor signs in by pasting a token, filters, pages and exports, then it all works from plain HTML forms and links', async () => {
    const context = await browser.newContext({ javaScriptEnabled: false, viewport: { width: 1280, height: 900 }, acceptDownloads: true });
    const page = await context.newPage();
    const dialogs: string[] = [];
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    try {
      await page.goto(`${s.baseUrl}/audit`);
      await page.fill('#token', await s.tokenFor('X26', 'auditor', { sub: 'ig.browser', name: 'Iris Auditor' }));
      await page.click('button:has-text("Sign in")');
      await page.waitForSelector('h1:has-text("Audit events")');
      expect(await page.textContent('.locus-who')).toContain('Iris Auditor (X26)');
      // nhsuk-frontend's stylesheet is applied: the header is NHS blue.
      expect(await page.locator('header.nhsuk-header').evaluate((el) => (globalThis as unknown as Css).getComputedStyle(el).backgroundColor)).toBe('rgb(0, 94, 184)');
      expect(await page.locator('table.locus-results tbody tr').count()).toBe(25);
      expect(await page.locator('figure.locus-chart svg rect').count()).toBeGreaterThan(15);
      expect(await page.locator('td.locus-user', { hasText: '<img src=x onerror=alert(1)>' }).count()).toBe(1);

      await page.check('#breakGlass');
      await page.click('button:has-text("Apply filter")');
      await page.waitForSelector('h2:has-text("matching event")');
      const glassRows = page.locator('table.locus-results tbody tr');
      const n = await glassRows.count();
      expect(n).toBeGreaterThanOrEqual(1);
      expect(await page.locator('table.locus-results tbody tr.locus-break-glass').count()).toBe(n);
      expect(await page.locator('tr.locus-break-glass', { hasText: 'dr.emergency' }).locator('.nhsuk-tag--red').textContent()).toBe('Break-glass');
      expect(await page.locator('tr.locus-break-glass').first().evaluate((el) => (globalThis as unknown as Css).getComputedStyle(el).backgroundColor)).toBe('rgb(253, 232, 230)');

      const download = page.waitForEvent('download');
      await page.click('#export-csv');
      const csv = await (await download).createReadStream();
      let text = '';
      for await (const chunk of csv) text += String(chunk);
      expect(text.split('\r\n')[0]).toBe('id,recorded,action,subtype,outcome,user,organisation,purpose,break_glass,patients');
      expect(text).toContain('dr.emergency');
      expect(text.trim().split('\r\n').every((line, i) => i === 0 || line.includes(',true,'))).toBe(true);

      await page.click('a:has-text("Clear filter")');
      await page.click('a:has-text("Older events")');
      await page.waitForSelector('a:has-text("Newer events")');
      expect(await page.locator('table.locus-results tbody tr').count()).toBe(25);
      await page.click('a:has-text("Newer events")');

      await page.fill('#patient', '123');
      await page.click('button:has-text("Apply filter")');
      expect(await page.textContent('.nhsuk-error-summary')).toContain('Enter a valid 10 digit NHS number');
      await page.click('a:has-text("Clear filter")');
      await page.waitForSelector('table.locus-results');

      mkdirSync(OUT, { recursive: true });
      await page.screenshot({ path: join(OUT, 'audit-page.png'), fullPage: true });
      expect(dialogs).toEqual([]);
      const views = await s.db.query<{ n: number }>("select count(*)::int as n from audit_event where agent_user = 'ig.browser'");
      // sign-in, page views, the export: each one is in the trail
      expect(views.rows[0]!.n).toBeGreaterThanOrEqual(8);
    } finally {
      await context.close();
    }
  }, 90_000);
});
