import type { AuditedRow } from '../helpers/audit';
import { auditEventsFor } from '../helpers/audit';
import { randomUUID } from 'node:crypto';
import request from 'supertest';
import { DEMO_PATIENTS } from '../../src/demo/seed';
import { VIEWER_COOKIE } from '../../src/web/viewer-page';
import { startTestServer } from '../helpers/server';
import type { TestServer } from '../helpers/server';
import { aStudy, patient, post } from '../helpers/fixtures';

let s: TestServer;
const XSS = patient(801);
const cookie = (token: string): string => `${VIEWER_COOKIE}=${token}`;

async function page(path: string, token: string, requestId = randomUUID()): Promise<request.Response> {
  return request(s.baseUrl).get(path).set('cookie', cookie(token)).set('x-request-id', requestId);
}

async function events(requestId: string): Promise<AuditedRow[]> {
  return auditEventsFor(s.db, requestId);
}

const studyCards = (text: string): number => (text.match(/<li class="locus-study"/g) ?? []).length;

beforeAll(async () => {
  s = await startTestServer({ demo: true });
  const ep = (await s.db.query<{ id: string }>(`select id from endpoint where managing_ods = 'RRK'`)).rows[0]!.id;
  const res = await post(s, await s.tokenFor('RRK', 'publisher'), '/fhir/ImagingStudy', aStudy({ nhs: XSS, endpointId: ep, description: '<script>alert("x")</script>' }));
  expect(res.status).toBe(201);
});
afterAll(async () => {
  await s?.close();
});

describe('/viewer sign-in', () => {
  it('when nobody is signed in, then the sign-in form is shown; a clinician token signs in with an HttpOnly SameSite=Strict cookie', async () => {
    const first = await request(s.baseUrl).get('/viewer');
    expect(first.status).toBe(200);
    expect(first.text).toContain('Sign in to see prior imaging');
    expect(first.headers['content-security-policy']).toContain("default-src 'none'");
    expect(first.headers['referrer-policy']).toBe('no-referrer');
    const token = await s.tokenFor('RJE', 'clinician');
    const login = await request(s.baseUrl).post('/viewer/login').type('form').send({ token: `Bearer ${token}` });
    expect(login.status).toBe(303);
    expect(login.headers.location).toBe('/viewer');
    const set = String(login.headers['set-cookie']);
    expect(set).toContain(`${VIEWER_COOKIE}=${token}`);
    expect(set).toMatch(/HttpOnly; SameSite=Strict; Path=\/viewer; Max-Age=\d+/);
  });

  it('when the token is not a clinician\'s, is garbage, or the form comes from another site, then the sign-in is refused (and audited)', async () => {
    const requestId = randomUUID();
    const auditor = await request(s.baseUrl).post('/viewer/login').set('x-request-id', requestId).type('form').send({ token: await s.tokenFor('X26', 'auditor') });
    expect(auditor.status).toBe(403);
    expect(auditor.text).toContain('Sign-in refused');
    expect((await events(requestId))[0]).toMatchObject({ subtype: 'viewer-sign-in', outcome: '4' });
    expect((await request(s.baseUrl).post('/viewer/login').type('form').send({ token: 'not a token' })).status).toBe(400);
    expect((await request(s.baseUrl).post('/viewer/login').set('origin', 'https://evil.example').type('form').send({ token: 'x.y.z' })).status).toBe(403);
    const expired = await page('/viewer', await s.tokenFor('RJE', 'clinician', { expiresInSeconds: -120 }));
    expect(expired.status).toBe(401);
    expect(expired.text).toContain('Your session has ended');
    expect(String(expired.headers['set-cookie'])).toContain('Max-Age=0');
  });
});

describe('/viewer search', () => {
  it('when a clinician searches a patient imaged at three trusts, then a timeline grouped by year shows each study with its custodian, counts, report and actions, and the search is audited', async () => {
    const requestId = randomUUID();
    const res = await page(`/viewer?nhs=${DEMO_PATIENTS.shared}`, await s.tokenFor('RJE', 'clinician', { name: 'Dr Jones' }), requestId);
    expect(res.status).toBe(200);
    expect(res.text).toContain('Signed in as Dr Jones (RJE)');
    expect([...res.text.matchAll(/<h2 class="nhsuk-heading-l locus-year-heading" id="year-(\d{4})">/g)].map((m) => m[1])).toEqual(['2025', '2024']);
    expect(studyCards(res.text)).toBe(3);
    expect(res.text).toContain('MRI Head');
    expect(res.text).toContain('University Hospitals Birmingham NHS Foundation Trust (RRK)');
    expect(res.text).toContain('The Royal Wolverhampton NHS Trust (RL4)');
    expect(res.text).toContain('2 series, 120 images');
    expect(res.text).toContain('14 February 2024');
    expect(res.text).toContain('Chest');
    expect((res.text.match(/Report available/g) ?? []).length).toBe(1);
    expect((res.text.match(/No report/g) ?? []).length).toBe(2);
    expect(res.text).toMatch(/href="\/viewer\/open\?type=ImagingStudy&amp;id=[^"]+"/);
    expect(res.text).toMatch(/href="\/viewer\/open\?type=DocumentReference&amp;id=[^"]+"/);
    expect(res.text).not.toContain('Some imaging is withheld');
    const [e] = await events(requestId);
    expect(e).toMatchObject({ subtype: 'search-type', outcome: '0', patients: [DEMO_PATIENTS.shared] });
    expect(e!.resource).toContain('viewer-page');
  });

  it('when filtered by modality or date, then only matching studies are shown; with none, then a clear empty state', async () => {
    const token = await s.tokenFor('RJE', 'clinician');
    const mr = await page(`/viewer?nhs=${DEMO_PATIENTS.shared}&modality=MR`, token);
    expect(studyCards(mr.text)).toBe(1);
    expect(mr.text).toContain('<option value="MR" selected>');
    const dated = await page(`/viewer?nhs=${DEMO_PATIENTS.shared}&from=2024-01-01&to=2024-12-31`, token);
    expect(studyCards(dated.text)).toBe(2);
    const none = await page(`/viewer?nhs=${patient(850)}`, token);
    expect(none.status).toBe(200);
    expect(none.text).toContain('No imaging was found for this patient with these filters.');
  });

  it('when the NHS number or dates are invalid, then 400 with the problem shown against the field and nothing searched', async () => {
    const token = await s.tokenFor('RJE', 'clinician');
    const short = await page('/viewer?nhs=12345', token);
    expect(short.status).toBe(400);
    expect(short.text).toContain('Enter a 10-digit NHS number');
    expect(short.text).toContain('nhsuk-form-group--error');
    const check = await page('/viewer?nhs=9991234565', token);
    expect(check.text).toContain('fails its check digit');
    const dates = await page(`/viewer?nhs=${DEMO_PATIENTS.shared}&from=2024-13-45&to=x`, token);
    expect(dates.status).toBe(400);
    expect((dates.text.match(/Enter a date as YYYY-MM-DD/g) ?? []).length).toBeGreaterThanOrEqual(2);
    const order = await page(`/viewer?nhs=${DEMO_PATIENTS.shared}&from=2025-01-01&to=2024-01-01`, token);
    expect(order.text).toContain('The end date must be on or after the start date');
  });

  it('when data or input carries markup, then it is escaped', async () => {
    const token = await s.tokenFor('RRK', 'clinician', { name: '<b>Dr "Quote"</b>' });
    const res = await page(`/viewer?nhs=${XSS}`, token);
    expect(res.status).toBe(200);
    expect(res.text).not.toContain('<script>alert');
    expect(res.text).toContain('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;');
    expect(res.text).toContain('&lt;b&gt;Dr &quot;Quote&quot;&lt;/b&gt;');
    const typed = await page(`/viewer?nhs=${encodeURIComponent('"><script>x</script>')}`, token);
    expect(typed.text).not.toContain('<script>x');
    expect(typed.text).toContain('value="&quot;&gt;&lt;script&gt;x&lt;/script&gt;"');
  });
});

describe('/viewer break-glass', () => {
  it('when results are withheld and the session is not ETREAT, then the notice says so without a form', async () => {
    const res = await page(`/viewer?nhs=${DEMO_PATIENTS.optedOut}`, await s.tokenFor('RRK', 'clinician'));
    expect(res.status).toBe(200);
    expect(res.text).toContain('Some imaging is withheld');
    expect(res.text).toContain('Your sign-in does not allow emergency access');
    expect(res.text).not.toContain('action="/viewer/break-glass"');
    const refused = await request(s.baseUrl).post('/viewer/break-glass').set('cookie', cookie(await s.tokenFor('RRK', 'clinician'))).type('form').send({ nhs: DEMO_PATIENTS.optedOut, reason: 'Unconscious patient in resus' });
    expect(refused.status).toBe(403);
  });

  it('when an ETREAT session states a reason, then the withheld imaging is shown under an emergency banner, audited as break-glass, and opens through POST forms', async () => {
    const token = await s.tokenFor('RRK', 'clinician', { purposeOfUse: 'ETREAT' });
    const notice = await page(`/viewer?nhs=${DEMO_PATIENTS.optedOut}`, token);
    expect(notice.text).toContain('action="/viewer/break-glass"');
    expect(studyCards(notice.text)).toBe(0);
    const short = await request(s.baseUrl).post('/viewer/break-glass').set('cookie', cookie(token)).type('form').send({ nhs: DEMO_PATIENTS.optedOut, reason: 'short' });
    expect(short.status).toBe(400);
    expect(short.text).toContain('at least 10 characters');
    const requestId = randomUUID();
    const res = await request(s.baseUrl).post('/viewer/break-glass').set('cookie', cookie(token)).set('x-request-id', requestId).type('form').send({ nhs: DEMO_PATIENTS.optedOut, modality: '', from: '', to: '', reason: 'Unconscious patient in resus' });
    expect(res.status).toBe(200);
    expect(res.text).toContain('Emergency access in use');
    expect(studyCards(res.text)).toBe(1);
    expect(res.text).toContain('US Abdomen');
    expect(res.text).toContain('<form class="locus-inline" method="post" action="/viewer/open">');
    const [e] = await events(requestId);
    expect(e).toMatchObject({ subtype: 'search-type', break_glass: true, patients: [DEMO_PATIENTS.optedOut] });
    const id = /name="id" value="([^"]+)"/.exec(res.text)![1]!;
    const open = await request(s.baseUrl).post('/viewer/open').set('cookie', cookie(token)).type('form').send({ type: 'ImagingStudy', id, reason: 'Unconscious patient in resus' });
    expect(open.status).toBe(200);
    expect(open.text).toContain('Emergency access in use');
    const without = await page(`/viewer/open?type=ImagingStudy&id=${id}`, token);
    expect(without.status).toBe(404);
    expect(without.text).toContain('the sharing rules withhold it');
  });
});

describe('/viewer open', () => {
  it('when a study is opened, then $resolve runs in-process (audited) and the page offers the viewer launch, the gateway URL and the retrieval token', async () => {
    const id = (await s.db.query<{ id: string }>(`select id from imaging_study where custodian_ods = 'RRK' and patient_nhs = $1`, [DEMO_PATIENTS.shared])).rows[0]!.id;
    const requestId = randomUUID();
    const res = await page(`/viewer/open?type=ImagingStudy&id=${id}`, await s.tokenFor('RJE', 'clinician'), requestId);
    expect(res.status).toBe(200);
    expect(res.text).toContain('href="http://localhost:3000/viewer?StudyInstanceUIDs=1.2.826.0.1.3680043.10.1001.1"');
    expect(res.text).toContain(`${s.baseUrl}/dicomweb/RRK/studies/1.2.826.0.1.3680043.10.1001.1`);
    expect(res.text).toMatch(/<textarea class="nhsuk-textarea locus-token"[^>]*>[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+<\/textarea>/);
    const [e] = await events(requestId);
    expect(e).toMatchObject({ subtype: '$resolve', outcome: '0', patients: [DEMO_PATIENTS.shared] });
    expect(e!.resource).toContain('viewer-page');
    const missing = await page('/viewer/open?type=ImagingStudy&id=nope', await s.tokenFor('RJE', 'clinician'));
    expect(missing.status).toBe(404);
  });

  it('when the audit trail cannot be written, then the page answers 503 and shows no patient data', async () => {
    await s.db.exec('alter table audit_chain rename to audit_chain_x');
    try {
      const res = await page(`/viewer?nhs=${DEMO_PATIENTS.shared}`, await s.tokenFor('RJE', 'clinician'));
      expect(res.status).toBe(503);
      expect(res.text).not.toContain('MRI Head');
    } finally {
      await s.db.exec('alter table audit_chain_x rename to audit_chain');
    }
  });

  it('when assets are asked for, then the nhsuk stylesheet (with rewritten image URLs) and the page CSS are served', async () => {
    const css = await request(s.baseUrl).get('/viewer/assets/nhsuk-frontend.min.css');
    expect(css.status).toBe(200);
    expect(css.text).not.toContain('url(/assets/');
    expect((await request(s.baseUrl).get('/viewer/assets/viewer.css')).text).toContain('.locus-study');
    expect((await request(s.baseUrl).get('/viewer/assets/images/../../package.json')).status).toBe(404);
  });
});
