import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { loadDevIssuer } from '../../src/access/dev-issuer';
import { createTokenVerifier } from '../../src/access/tokens';
import { createApp } from '../../src/fhir/app';
import { auditExtension } from '../../src/web/audit-extension';
import { startTestServer } from '../helpers/server';
import type { TestServer } from '../helpers/server';
import { NHS, aStudy, get, patient, post, registerNetwork } from '../helpers/fixtures';

let s: TestServer;
let cookie: string;
const P = patient(501);
const XSS = '<script>alert("pwned")</script>';

async function signIn(token: string): Promise<request.Response> {
  return request(s.baseUrl).post('/audit/login').type('form').send({ token });
}

beforeAll(async () => {
  s = await startTestServer();
  const net = await registerNetwork(s, [{ ods: 'RRK' }]);
  expect((await post(s, await s.tokenFor('RRK', 'publisher'), '/fhir/ImagingStudy', aStudy({ nhs: P, endpointId: net.RRK!.endpointId }))).status).toBe(201);
  for (const sub of [XSS, 'dr.page']) await get(s, await s.tokenFor('RRK', 'clinician', { sub }), `/fhir/ImagingStudy?patient.identifier=${NHS}|${P}`);
  await get(s, await s.tokenFor('RRK', 'clinician', { sub: 'dr.glass', purposeOfUse: 'ETREAT', breakGlassReason: 'Emergency: patient unconscious' }), `/fhir/ImagingStudy?patient.identifier=${NHS}|${P}`);
  const res = await signIn(await s.tokenFor('X26', 'auditor', { sub: 'ig.page' }));
  expect(res.status).toBe(303);
  cookie = (res.headers['set-cookie'] as unknown as string[])[0]!.split(';')[0]!;
});
afterAll(async () => s.close());

const page = (path: string): request.Test => request(s.baseUrl).get(path).set('cookie', cookie);
const auditedPageViews = async (sub: string): Promise<{ outcome: string; patients: string[] }[]> =>
  (await s.db.query<{ outcome: string; patients: string[] }>('select outcome, patients from audit_event where agent_user = $1 and resource like $2 order by seq', [sub, '%"value":"audit-page"}%'])).rows;

describe('signing in', () => {
  it('when there is no session, then the sign-in form (nothing from the trail is shown)', async () => {
    const res = await request(s.baseUrl).get('/audit');
    expect(res.status).toBe(200);
    expect(res.text).toContain('name="token"');
    expect(res.text).not.toContain('locus-results');
  });

  it('when an auditor signs in, then the session cookie is HttpOnly, SameSite=Strict and scoped to /audit', async () => {
    const res = await signIn(await s.tokenFor('X26', 'auditor'));
    expect(res.headers.location).toBe('/audit');
    expect((res.headers['set-cookie'] as unknown as string[])[0]).toMatch(/^locus_audit_session=[\w.-]+; HttpOnly; SameSite=Strict; Path=\/audit; Max-Age=\d+$/);
  });

  it('when a clinician signs in, then 403 and the attempt is audited', async () => {
    const res = await signIn(await s.tokenFor('RRK', 'clinician', { sub: 'dr.curious' }));
    expect(res.status).toBe(403);
    expect(res.headers['set-cookie']).toBeUndefined();
    expect((await s.db.query("select outcome from audit_event where agent_user = 'dr.curious'")).rows).toEqual([{ outcome: '4' }]);
  });

  it('when the pasted text is not a token, then 400 with the reason', async () => {
    const res = await signIn('not a token');
    expect(res.status).toBe(400);
    expect(res.text).toContain('There is a problem');
  });

  it('when the session cookie holds a bad token, then 401, the cookie is cleared and the attempt is audited', async () => {
    const res = await request(s.baseUrl).get('/audit').set('cookie', 'locus_audit_session=eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJtYWxsb3J5In0.c2ln');
    expect(res.status).toBe(401);
    expect((res.headers['set-cookie'] as unknown as string[])[0]).toMatch(/Max-Age=0/);
    expect((await s.db.query("select outcome from audit_event where agent_user = 'mallory'")).rows).toEqual([{ outcome: '4' }]);
  });

  it('when a form is posted from another site, then it is refused', async () => {
    const res = await request(s.baseUrl).post('/audit/login').set('origin', 'https://evil.example').type('form').send({ token: 'x.y.z' });
    expect(res.status).toBe(403);
  });
});

describe('the review page', () => {
  it('when the auditor opens it, then a filter form, the chart, the table and the CSV link, with strict headers, and the view is audited', async () => {
    const res = await page('/audit');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    expect(res.headers['content-security-policy']).toContain("default-src 'none'");
    expect(res.headers['referrer-policy']).toBe('no-referrer');
    expect(res.text).toContain('<svg viewBox');
    expect(res.text).toContain('class="nhsuk-table locus-results"');
    expect(res.text).toContain('href="/audit/export.csv"');
    expect(await auditedPageViews('ig.page')).toEqual([{ outcome: '0', patients: [] }]);
  });

  it('when a user id holds markup, then it is shown escaped and never as markup', async () => {
    const res = await page('/audit');
    expect(res.text).toContain('&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt;');
    expect(res.text).not.toMatch(/<script/i);
  });

  it('when a break-glass access is listed, then its row is highlighted and tagged', async () => {
    const res = await page('/audit?breakGlass=true');
    const rows = res.text.match(/<tr class="nhsuk-table__row[^"]*">/g) ?? [];
    expect(rows.slice(1)).toEqual(['<tr class="nhsuk-table__row locus-break-glass">']);
    expect(res.text).toContain('Break-glass</strong>');
    expect(res.text).toContain('dr.glass');
  });

  it('when filtered by patient, then only that patient, and the view is audited naming the patient', async () => {
    const res = await page(`/audit?patient=${P}&user=dr.page`);
    expect(res.status).toBe(200);
    expect(res.text).toContain('1 matching event');
    expect(await auditedPageViews('ig.page')).toContainEqual({ outcome: '0', patients: [P] });
  });

  it('when a field is invalid, then 400 with an error summary and the field marked', async () => {
    const res = await page('/audit?patient=123&from=31-01-2024');
    expect(res.status).toBe(400);
    expect(res.text).toContain('Enter a valid 10 digit NHS number');
    expect(res.text).toContain('Enter the start date as YYYY-MM-DD');
    expect(res.text).toContain('nhsuk-input--error');
  });

  it('when there are more events than a page, then Older events pages on with the filter kept', async () => {
    for (let i = 0; i < 26; i++) await get(s, await s.tokenFor('RRK', 'clinician', { sub: 'dr.busy' }), `/fhir/ImagingStudy?patient.identifier=${NHS}|${P}`);
    const first = await page('/audit?user=dr.busy');
    const next = /href="(\/audit\?user=dr.busy&amp;cursor=[^"]+)"/.exec(first.text)?.[1]?.replace(/&amp;/g, '&');
    expect(next).toBeDefined();
    const second = await page(next as string);
    expect(second.status).toBe(200);
    expect((second.text.match(/locus-user">dr.busy</g) ?? []).length).toBe(1);
  });

  it('when the CSV link is followed, then the filtered CSV streams and the export is audited; without a session, 401', async () => {
    const res = await page('/audit/export.csv?user=dr.page');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/csv/);
    expect(res.text.trim().split('\r\n')).toHaveLength(2);
    expect(res.text).toContain('dr.page');
    expect((await s.db.query("select 1 from audit_event where agent_user = 'ig.page' and resource like '%audit-page-export-csv%'")).rowCount).toBe(1);
    expect((await request(s.baseUrl).get('/audit/export.csv')).status).toBe(401);
  });

  it('when the stylesheet is fetched, then nhsuk-frontend is served with its image URLs under /audit/assets', async () => {
    const css = await request(s.baseUrl).get('/audit/assets/nhsuk-frontend.min.css');
    expect(css.status).toBe(200);
    expect(css.text).toContain('.nhsuk-header');
    expect(css.text).not.toContain('url(/assets/');
    expect((await request(s.baseUrl).get('/audit/assets/images/nhsuk-icon-cross.svg')).status).toBe(200);
    expect((await request(s.baseUrl).get('/audit/assets/images/..%2Fpackage.json')).status).toBe(404);
  });

  it('when signing out, then the cookie is cleared', async () => {
    const res = await request(s.baseUrl).post('/audit/logout').set('cookie', cookie);
    expect(res.status).toBe(303);
    expect((res.headers['set-cookie'] as unknown as string[])[0]).toMatch(/Max-Age=0/);
  });
});

describe('development sign-in', () => {
  it('when the server trusts its development issuer, then the button signs in an auditor; otherwise there is no button', async () => {
    expect((await request(s.baseUrl).get('/audit')).text).not.toContain('/audit/dev-login');
    expect((await request(s.baseUrl).post('/audit/dev-login').type('form').send({ org: 'X26' })).status).toBe(404);

    const issuer = await loadDevIssuer();
    const verifier = createTokenVerifier({ audience: s.config.audience, issuers: [issuer.trusted], allowedAlgs: ['ES256'] });
    const app = createApp({ ...s.locus.deps, verifier }, [auditExtension({ devIssuer: issuer })]);
    const server = await new Promise<Server>((resolve) => {
      const srv = app.listen(0, '127.0.0.1', () => resolve(srv));
    });
    try {
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      expect((await request(base).get('/audit')).text).toContain('action="/audit/dev-login"');
      const res = await request(base).post('/audit/dev-login').type('form').send({ org: 'X26' });
      expect(res.status).toBe(303);
      const dev = (res.headers['set-cookie'] as unknown as string[])[0]!.split(';')[0]!;
      const view = await request(base).get('/audit').set('cookie', dev);
      expect(view.status).toBe(200);
      expect(view.text).toContain('Signed in as Development auditor (X26)');
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
