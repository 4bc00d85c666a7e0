import type { AuditedRow } from '../helpers/audit';
import { auditEventsFor } from '../helpers/audit';
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import { decodeProtectedHeader, decodeJwt } from 'jose';
import request from 'supertest';
import { aConsent } from '../../src/demo/seed';
import { RETRIEVAL_TOKEN_TYPE } from '../../src/resolve/retrieval-token';
import { startTestServer } from '../helpers/server';
import type { TestServer } from '../helpers/server';
import { anEndpoint, anOrganization, aStudy, get, nextUid, patient, post, spineCode } from '../helpers/fixtures';
import type { FakePacs } from './fake-pacs';
import { startFakePacs, streamBytes } from './fake-pacs';

let s: TestServer;
let pacs: FakePacs;
const P = patient(701);
const OPTED_OUT = patient(702);
const UID = nextUid();
const OTHER_UID = nextUid();
const HIDDEN_UID = nextUid();

type Event = AuditedRow;
async function eventsFor(requestId: string): Promise<Event[]> {
  return auditEventsFor(s.db, requestId);
}
const detail = (e: Event, type: string): string | undefined =>
  (JSON.parse(e.resource) as { entity: { detail?: { type: string; valueString: string }[] }[] }).entity.flatMap((x) => x.detail ?? []).find((d) => d.type === type)?.valueString;

async function retrievalToken(uid: string, org = 'RJE'): Promise<string> {
  const id = (await s.db.query<{ id: string }>('select id from imaging_study where study_uid = $1', [uid])).rows[0]!.id;
  const res = await get(s, await s.tokenFor(org, 'clinician', { sub: 'dr.gateway' }), `/fhir/ImagingStudy/${id}/$resolve`);
  expect(res.status).toBe(200);
  return (res.body.parameter as { name: string; part?: { name: string; valueString?: string }[] }[]).find((p) => p.name === 'retrievalToken')!.part!.find((p) => p.name === 'token')!.valueString!;
}

function gw(path: string, token?: string, requestId = randomUUID()): request.Test {
  const r = request(s.baseUrl).get(path).set('x-request-id', requestId);
  return token ? r.set('authorization', `Bearer ${token}`) : r;
}

beforeAll(async () => {
  process.env.LOCUS_GATEWAY_TIMEOUT_MS = '700';
  pacs = await startFakePacs();
  s = await startTestServer();
  const admin = await s.tokenFor('ADMIN', 'admin');
  for (const ods of ['RRK', 'RJE']) {
    const org = await post(s, admin, '/fhir/Organization', anOrganization(ods));
    const ep = await post(s, admin, '/fhir/Endpoint', anEndpoint(org.body.id, ods === 'RRK' ? pacs.root : 'http://127.0.0.1:9/dicom-web'));
    expect(ep.status).toBe(201);
    if (ods === 'RRK') {
      const publisher = await s.tokenFor('RRK', 'publisher');
      for (const [uid, nhs] of [[UID, P], [OTHER_UID, P], [HIDDEN_UID, OPTED_OUT]] as const) expect((await post(s, publisher, '/fhir/ImagingStudy', aStudy({ nhs, uid, endpointId: ep.body.id }))).status).toBe(201);
    }
  }
  expect((await post(s, admin, '/fhir/Consent', aConsent(OPTED_OUT, [], 'RRK'))).status).toBe(201);
});
afterAll(async () => {
  delete process.env.LOCUS_GATEWAY_TIMEOUT_MS;
  await s?.close();
  await pacs?.stop();
});
beforeEach(() => {
  pacs.seen.length = 0;
  pacs.behave((_req, res) => streamBytes(res, 3 * 1024 * 1024 + 17, { written: 0 }));
});

describe('DICOMweb gateway: access', () => {
  it('when a retrieval token is presented for its study, then the PACS answer streams through intact and the PACS receives the token', async () => {
    const token = await retrievalToken(UID);
    const requestId = randomUUID();
    const res = await gw(`/dicomweb/RRK/studies/${UID}`, token, requestId).set('accept', 'multipart/related; type="application/dicom"').buffer(true).parse((r, cb) => {
      const chunks: Buffer[] = [];
      r.on('data', (c: Buffer) => chunks.push(c));
      r.on('end', () => cb(null, Buffer.concat(chunks)));
    });
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('multipart/related; type="application/dicom"; boundary=locus');
    expect((res.body as Buffer).length).toBe(3 * 1024 * 1024 + 17);
    expect(pacs.seen).toHaveLength(1);
    expect(pacs.seen[0]!.url).toBe(`/dicom-web/studies/${UID}`);
    expect(pacs.seen[0]!.headers.authorization).toBe(`Bearer ${token}`);
    expect(pacs.seen[0]!.headers.accept).toBe('multipart/related; type="application/dicom"');
    await new Promise((r) => setTimeout(r, 100)); // the closing event is written after the last byte
    const events = await eventsFor(requestId);
    expect(events.map((e) => [e.subtype, e.outcome, detail(e, 'phase')])).toEqual([['dicomweb-retrieve', '0', 'started'], ['dicomweb-retrieve', '0', 'completed']]);
    expect(detail(events[1]!, 'bytes-sent')).toBe(String(3 * 1024 * 1024 + 17));
    expect(detail(events[1]!, 'study-instance-uid')).toBe(UID);
    expect(events[0]!.patients).toEqual([P]);
    expect(events[0]!.resource).toContain('dr.gateway');
  });

  it('when a retrieval token is used for another study or another custodian, then 403 or 401, audited, and the PACS is never called', async () => {
    const token = await retrievalToken(UID);
    const requestId = randomUUID();
    const other = await gw(`/dicomweb/RRK/studies/${OTHER_UID}/metadata`, token, requestId);
    expect(other.status).toBe(403);
    expect(other.body.resourceType).toBe('OperationOutcome');
    expect(other.body.issue[0].diagnostics).toContain('not bound to this study');
    expect((await gw(`/dicomweb/RJE/studies/${UID}`, token)).status).toBe(401);
    expect((await gw(`/dicomweb/RRK/studies?StudyInstanceUID=${OTHER_UID}`, token)).status).toBe(403);
    expect(pacs.seen).toHaveLength(0);
    const [e] = await eventsFor(requestId);
    expect(e).toMatchObject({ subtype: 'dicomweb-retrieve', outcome: '4' });
    expect(detail(e!, 'phase')).toBe('refused');
  });

  it('when the patient opts out after $resolve, then the retrieval token stops working at once (404, audited) though it has not expired', async () => {
    const uid = nextUid();
    const nhs = patient(703);
    const publisher = await s.tokenFor('RRK', 'publisher');
    const ep = (await s.db.query<{ id: string }>(`select id from endpoint where managing_ods = 'RRK'`)).rows[0]!.id;
    expect((await post(s, publisher, '/fhir/ImagingStudy', aStudy({ nhs, uid, endpointId: ep }))).status).toBe(201);
    const token = await retrievalToken(uid);
    pacs.behave((_req, res) => res.writeHead(200, { 'content-type': 'application/dicom+json' }).end('[]'));
    expect((await gw(`/dicomweb/RRK/studies/${uid}/metadata`, token)).status).toBe(200);
    const admin = await s.tokenFor('ADMIN', 'admin');
    expect((await post(s, admin, '/fhir/Consent', aConsent(nhs, [], 'RRK'))).status).toBe(201);
    pacs.seen.length = 0;
    const requestId = randomUUID();
    const res = await gw(`/dicomweb/RRK/studies/${uid}/metadata`, token, requestId);
    expect(res.status).toBe(404);
    expect(res.body.issue[0].details.coding[0].code).toBe('NO_RECORD_FOUND');
    expect(pacs.seen).toHaveLength(0);
    const [e] = await eventsFor(requestId);
    expect(e).toMatchObject({ subtype: 'dicomweb-retrieve', outcome: '4' });
    expect(detail(e!, 'phase')).toBe('refused');
  });

  it('when a clinician access token is presented, then the consent check applies: visible studies pass with a minted retrieval token, withheld ones are 404 unless break-glass', async () => {
    const clinician = await s.tokenFor('RJE', 'clinician');
    pacs.behave((_req, res) => res.writeHead(200, { 'content-type': 'application/dicom+json' }).end('[]'));
    const ok = await gw(`/dicomweb/RRK/studies/${UID}/series`, clinician);
    expect(ok.status).toBe(200);
    const upstream = (pacs.seen[0]!.headers.authorization as string).replace('Bearer ', '');
    expect(decodeProtectedHeader(upstream).typ).toBe(RETRIEVAL_TOKEN_TYPE);
    expect(decodeJwt(upstream)).toMatchObject({ study_uid: UID, custodian: 'RRK', org: 'RJE' });
    pacs.seen.length = 0;
    const hidden = await gw(`/dicomweb/RRK/studies/${HIDDEN_UID}`, clinician);
    const unknown = await gw(`/dicomweb/RRK/studies/${nextUid()}`, clinician);
    expect(hidden.status).toBe(404);
    expect(unknown.status).toBe(404);
    expect(hidden.body.issue[0].diagnostics).toBe(unknown.body.issue[0].diagnostics);
    expect(pacs.seen).toHaveLength(0);
    const glass = await s.tokenFor('RJE', 'clinician', { purposeOfUse: 'ETREAT' });
    expect((await gw(`/dicomweb/RRK/studies/${HIDDEN_UID}`, glass).set('x-break-glass-reason', 'Trauma call, patient unconscious')).status).toBe(200);
    expect((await gw(`/dicomweb/RRK/studies/${UID}`, await s.tokenFor('X26', 'auditor'))).status).toBe(403);
  });

  it('when QIDO-RS is asked at study level, then exactly the bound StudyInstanceUID is forwarded and broader searches are refused', async () => {
    const token = await retrievalToken(UID);
    pacs.behave((_req, res) => res.writeHead(200, { 'content-type': 'application/dicom+json' }).end('[]'));
    const res = await gw(`/dicomweb/RRK/studies?StudyInstanceUID=${UID}&includefield=00081030`, token);
    expect(res.status).toBe(200);
    expect(pacs.seen[0]!.url).toBe(`/dicom-web/studies?StudyInstanceUID=${UID}&includefield=00081030`);
    expect((await gw('/dicomweb/RRK/studies?PatientID=9991234564', token)).status).toBe(400);
    expect((await gw(`/dicomweb/RRK/studies?StudyInstanceUID=${UID}&StudyInstanceUID=${OTHER_UID}`, token)).status).toBe(400);
    expect((await gw(`/dicomweb/RRK/studies/${UID}/series?StudyInstanceUID=${OTHER_UID}`, token)).status).toBe(400);
    expect(pacs.seen).toHaveLength(1);
  });

  it('when the path, method or token is wrong, then 400, 405 and 401 OperationOutcomes', async () => {
    const token = await retrievalToken(UID);
    for (const path of [`/dicomweb/rrk/studies/${UID}`, `/dicomweb/RRK/patients/${UID}`, `/dicomweb/RRK/studies/${UID}/../../x`, `/dicomweb/RRK/studies/01.2`, `/dicomweb/RRK/studies/${UID}/series/1.2/instances/1.3/frames/0`, `/dicomweb/RRK/studies/${UID}/bulkdata`]) {
      const res = await gw(path, token);
      expect({ path, status: res.status, type: res.body.resourceType }).toEqual({ path, status: 400, type: 'OperationOutcome' });
    }
    const post405 = await request(s.baseUrl).post(`/dicomweb/RRK/studies/${UID}`).set('authorization', `Bearer ${token}`);
    expect(post405.status).toBe(405);
    expect(post405.headers.allow).toBe('GET');
    const none = await gw(`/dicomweb/RRK/studies/${UID}`);
    expect(none.status).toBe(401);
    expect(spineCode(none)).toBe('MISSING_OR_INVALID_HEADER');
    expect(pacs.seen).toHaveLength(0);
  });
});

describe('DICOMweb gateway: upstream failures', () => {
  it('when the PACS answers 404 or 500, is unreachable, or stays silent, then 404, 502, 502 and 504 OperationOutcomes, audited as failed', async () => {
    const token = await retrievalToken(UID);
    pacs.behave((_req, res) => res.writeHead(404).end('no such study'));
    const nf = await gw(`/dicomweb/RRK/studies/${UID}`, token);
    expect(nf.status).toBe(404);
    expect(nf.text).not.toContain('no such study');
    pacs.behave((_req, res) => res.writeHead(500).end('boom'));
    const requestId = randomUUID();
    const bad = await gw(`/dicomweb/RRK/studies/${UID}`, token, requestId);
    expect(bad.status).toBe(502);
    expect(bad.body.issue[0].diagnostics).toContain('HTTP 500');
    const [e] = await eventsFor(requestId);
    expect(e!.outcome).toBe('8');
    expect(detail(e!, 'phase')).toBe('failed');
    pacs.behave(() => undefined); // never answers
    const slow = await gw(`/dicomweb/RRK/studies/${UID}`, token);
    expect(slow.status).toBe(504);
    expect(slow.body.issue[0].code).toBe('timeout');
  });

  it('when the PACS endpoint is unreachable, then 502', async () => {
    await s.db.query(`update endpoint set address = 'http://127.0.0.1:9/dicom-web' where managing_ods = 'RRK'`);
    try {
      const res = await gw(`/dicomweb/RRK/studies/${UID}`, await retrievalToken(UID));
      expect(res.status).toBe(502);
      expect(res.body.issue[0].diagnostics).toContain('could not be reached');
    } finally {
      await s.db.query(`update endpoint set address = $1 where managing_ods = 'RRK'`, [pacs.root]);
    }
  });

  it('when the audit trail cannot be written, then 503 and no byte of the study leaves', async () => {
    const token = await retrievalToken(UID);
    await s.db.exec('alter table audit_chain rename to audit_chain_x');
    try {
      const res = await gw(`/dicomweb/RRK/studies/${UID}`, token);
      expect(res.status).toBe(503);
      expect(res.body.resourceType).toBe('OperationOutcome');
      expect(res.text).not.toContain('AAAA');
    } finally {
      await s.db.exec('alter table audit_chain_x rename to audit_chain');
    }
  });
});

describe('DICOMweb gateway: streaming', () => {
  function rawGet(path: string, token: string, requestId: string): Promise<http.IncomingMessage> {
    const url = new URL(path, s.baseUrl);
    return new Promise((resolve, reject) => {
      http.get(url, { headers: { authorization: `Bearer ${token}`, 'x-request-id': requestId } }, resolve).on('error', reject);
    });
  }

  it('when the client stops reading, then the PACS is paused (backpressure) and nothing piles up in the gateway; when it reads again, every byte arrives', async () => {
    const total = 96 * 1024 * 1024;
    const counter = { written: 0 };
    pacs.behave((_req, res) => streamBytes(res, total, counter));
    const requestId = randomUUID();
    const res = await rawGet(`/dicomweb/RRK/studies/${UID}`, await retrievalToken(UID), requestId);
    res.pause();
    await new Promise((r) => setTimeout(r, 1000));
    const inFlight = counter.written;
    // Only socket buffers hold data while the client is paused: far less than the study.
    expect(inFlight).toBeLessThan(total / 3);
    await new Promise((r) => setTimeout(r, 300));
    expect(counter.written).toBe(inFlight);
    let received = 0;
    res.on('data', (c: Buffer) => {
      received += c.length;
    });
    res.resume();
    await new Promise((r, j) => {
      res.on('end', r);
      res.on('error', j);
    });
    expect(received).toBe(total);
  });

  it('when the client disconnects mid-transfer, then the upstream request is aborted and the transfer is audited as failed with the bytes sent', async () => {
    const counter = { written: 0 };
    pacs.behave((_req, res) => streamBytes(res, 512 * 1024 * 1024, counter));
    const requestId = randomUUID();
    const res = await rawGet(`/dicomweb/RRK/studies/${UID}`, await retrievalToken(UID), requestId);
    const upstreamClosed = pacs.closed();
    let got = 0;
    await new Promise<void>((r) => {
      res.on('data', (c: Buffer) => {
        got += c.length;
        if (got > 4 * 1024 * 1024) {
          res.destroy();
          r();
        }
      });
    });
    await upstreamClosed;
    expect(counter.written).toBeLessThan(512 * 1024 * 1024);
    await new Promise((r) => setTimeout(r, 200));
    const events = await eventsFor(requestId);
    expect(events.map((e) => detail(e, 'phase'))).toEqual(['started', 'failed']);
    expect(Number(detail(events[1]!, 'bytes-sent'))).toBeGreaterThan(4 * 1024 * 1024);
    expect(events[1]!.resource).toContain('the client went away');
  });

  it('when the PACS goes silent mid-stream while the client is reading, then the transfer is cut and audited as failed', async () => {
    pacs.behave((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(10 * 1024 * 1024) });
      res.write(Buffer.alloc(256 * 1024));
    });
    const requestId = randomUUID();
    const res = await rawGet(`/dicomweb/RRK/studies/${UID}`, await retrievalToken(UID), requestId);
    const outcome = await new Promise<string>((r) => {
      res.on('data', () => undefined);
      res.on('end', () => r('complete'));
      res.on('error', () => r('truncated'));
    });
    expect(outcome).toBe('truncated');
    await new Promise((r) => setTimeout(r, 200));
    const events = await eventsFor(requestId);
    expect(events.map((e) => detail(e, 'phase'))).toEqual(['started', 'failed']);
    expect(events[1]!.resource).toContain('went silent');
  });

  it('when the PACS fails mid-stream, then the client sees a truncated response, not a complete one, and the transfer is audited as failed', async () => {
    pacs.behave((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(10 * 1024 * 1024) });
      res.write(Buffer.alloc(1024 * 1024));
      setTimeout(() => res.destroy(), 50);
    });
    const requestId = randomUUID();
    const res = await rawGet(`/dicomweb/RRK/studies/${UID}`, await retrievalToken(UID), requestId);
    const outcome = await new Promise<string>((r) => {
      res.on('data', () => undefined);
      res.on('end', () => r('complete'));
      res.on('error', () => r('truncated'));
      res.on('aborted', () => r('truncated'));
    });
    expect(outcome).toBe('truncated');
    await new Promise((r) => setTimeout(r, 200));
    const events = await eventsFor(requestId);
    expect(events.map((e) => [detail(e, 'phase'), e.outcome])).toEqual([['started', '0'], ['failed', '8']]);
  });
});
