import request from 'supertest';
import { csvField } from '../../src/audit/audit-csv';
import { parseAuditQuery } from '../../src/audit/audit-query';
import { streamAuditEvents } from '../../src/audit/audit-search';
import type { Queryable, SqlValue } from '../../src/store/database';
import { insertSyntheticAuditEvents } from '../../bench/audit';
import { startTestServer } from '../helpers/server';
import type { TestServer } from '../helpers/server';
import { NHS, aStudy, get, patient, post, registerNetwork } from '../helpers/fixtures';

let s: TestServer;
let auditor: string;
const P = patient(401);
const NASTY = 'dr "quote", comma\nnewline';
const FORMULA = '=HYPERLINK("http://evil.example")';

/** RFC 4180 reader, enough to check the writer: quoted fields, doubled quotes, CRLF records. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\r' && text[i + 1] === '\n') {
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
      i++;
    } else field += c;
  }
  return rows;
}

const binary = (res: request.Response, cb: (err: Error | null, body: string) => void): void => {
  let text = '';
  res.setEncoding('utf8');
  res.on('data', (chunk: string) => {
    text += chunk;
  });
  res.on('end', () => cb(null, text));
};

beforeAll(async () => {
  s = await startTestServer();
  const net = await registerNetwork(s, [{ ods: 'RRK' }]);
  expect((await post(s, await s.tokenFor('RRK', 'publisher'), '/fhir/ImagingStudy', aStudy({ nhs: P, endpointId: net.RRK!.endpointId }))).status).toBe(201);
  for (const sub of [NASTY, FORMULA, 'dr.plain']) {
    expect((await get(s, await s.tokenFor('RRK', 'clinician', { sub }), `/fhir/ImagingStudy?patient.identifier=${NHS}|${P}`)).status).toBe(200);
  }
  auditor = await s.tokenFor('X26', 'auditor', { sub: 'ig.exporter' });
});
afterAll(async () => s.close());

describe('CSV', () => {
  it('when _format=csv, then a streamed CSV with a header and one correctly quoted row per matching event', async () => {
    const res = await request(s.baseUrl).get(`/fhir/AuditEvent?_format=csv&patient=${P}&subtype=search-type&agent=${encodeURIComponent(NASTY.replace(',', '\\,'))},dr.plain`).set('authorization', `Bearer ${auditor}`).buffer(true).parse(binary);
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/csv/);
    expect(res.headers['transfer-encoding']).toBe('chunked');
    const rows = parseCsv(res.body as string);
    expect(rows[0]).toEqual(['id', 'recorded', 'action', 'subtype', 'outcome', 'user', 'organisation', 'purpose', 'break_glass', 'patients']);
    expect(rows.slice(1).map((r) => r[5]).sort()).toEqual([NASTY, 'dr.plain'].sort());
    expect(rows.slice(1).every((r) => r.length === 10 && r[9] === P && r[6] === 'RRK')).toBe(true);
  });

  it('when Accept is text/csv, then CSV too; a user id that a spreadsheet would run as a formula is neutralised', async () => {
    const res = await request(s.baseUrl).get(`/fhir/AuditEvent?agent=${encodeURIComponent(FORMULA)}`).set('authorization', `Bearer ${auditor}`).set('accept', 'text/csv').buffer(true).parse(binary);
    expect(res.status).toBe(200);
    const rows = parseCsv(res.body as string);
    expect(rows).toHaveLength(2);
    expect(rows[1]![5]).toBe(`'${FORMULA}`);
  });

  it('when fields need quoting, then csvField follows RFC 4180', () => {
    expect(csvField('plain')).toBe('plain');
    expect(csvField('a,b')).toBe('"a,b"');
    expect(csvField('say "hi"')).toBe('"say ""hi"""');
    expect(csvField('two\nlines')).toBe('"two\nlines"');
    expect(csvField('+1')).toBe("'+1");
  });
});

describe('NDJSON', () => {
  it.each([
    ['_format=ndjson', undefined],
    ['', 'application/fhir+ndjson'],
  ])('when asked with %s %s, then one stored AuditEvent per line, filtered', async (format, accept) => {
    let req = request(s.baseUrl).get(`/fhir/AuditEvent?patient=${P}&subtype=search-type${format ? `&${format}` : ''}`).set('authorization', `Bearer ${auditor}`);
    if (accept) req = req.set('accept', accept);
    const res = await req.buffer(true).parse(binary);
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/fhir\+ndjson/);
    const lines = (res.body as string).split('\n');
    expect(lines.pop()).toBe('');
    const events = lines.map((l) => JSON.parse(l) as { resourceType: string; entity: { what?: { identifier?: { value: string } } }[] });
    const count = (await s.db.query<{ n: number }>("select count(*)::int as n from audit_event where $1 = any(patients) and subtype = 'search-type'", [P])).rows[0]!.n;
    expect(events).toHaveLength(count);
    expect(events.every((e) => e.resourceType === 'AuditEvent' && e.entity.some((x) => x.what?.identifier?.value === P))).toBe(true);
  });
});

describe('access and audit of exports', () => {
  it('when a clinician asks for an export, then 403 OperationOutcome, no data, and the refusal is audited', async () => {
    const res = await request(s.baseUrl).get('/fhir/AuditEvent?_format=csv').set('authorization', `Bearer ${await s.tokenFor('RRK', 'clinician', { sub: 'dr.exporter' })}`);
    expect(res.status).toBe(403);
    expect(res.body.resourceType).toBe('OperationOutcome');
    const rows = await s.db.query<{ outcome: string }>("select outcome from audit_event where agent_user = 'dr.exporter'");
    expect(rows.rows).toEqual([{ outcome: '4' }]);
  });

  it('when no token is given, then 401', async () => {
    expect((await request(s.baseUrl).get('/fhir/AuditEvent?_format=ndjson')).status).toBe(401);
  });

  it('when an export starts, then its own AuditEvent is already durable, so it appears in its own output', async () => {
    const me = await s.tokenFor('X26', 'auditor', { sub: 'ig.self' });
    const res = await request(s.baseUrl).get('/fhir/AuditEvent?_format=ndjson&agent=ig.self').set('authorization', `Bearer ${me}`).buffer(true).parse(binary);
    const lines = (res.body as string).trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('fhir-export-ndjson');
  });

  it('when the audit cannot be written, then the export answers 503 and streams nothing', async () => {
    await s.db.exec('alter table audit_chain rename to audit_chain_x');
    try {
      const res = await request(s.baseUrl).get(`/fhir/AuditEvent?_format=csv&patient=${P}`).set('authorization', `Bearer ${auditor}`);
      expect(res.status).toBe(503);
      expect(res.body.resourceType).toBe('OperationOutcome');
      expect(res.text).not.toContain(P);
    } finally {
      await s.db.exec('alter table audit_chain_x rename to audit_chain');
    }
  });

  it('when the filter is invalid, then 400 OperationOutcome before any byte of CSV', async () => {
    const res = await request(s.baseUrl).get('/fhir/AuditEvent?_format=csv&date=soon').set('authorization', `Bearer ${auditor}`);
    expect(res.status).toBe(400);
    expect(res.body.resourceType).toBe('OperationOutcome');
  });
});

describe('streaming in bounded batches', () => {
  it('when thousands of events are exported, then rows come in keyset batches (never all at once) and every event arrives once', async () => {
    await insertSyntheticAuditEvents(s.db, 2600);
    const total = (await s.db.query<{ n: number }>('select count(*)::int as n from audit_event')).rows[0]!.n;
    const sizes: number[] = [];
    const spy: Queryable = {
      query: async <R>(sql: string, params?: readonly SqlValue[]) => {
        const r = await s.db.query<R>(sql, params);
        sizes.push(r.rows.length);
        return r;
      },
    };
    const query = parseAuditQuery([], { defaultPageSize: 20, maxPageSize: 100 });
    const ids = new Set<string>();
    for await (const batch of streamAuditEvents(spy, query, 1000)) for (const r of batch) ids.add(r.id);
    expect(ids.size).toBe(total);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(1001);
    expect(sizes.length).toBeGreaterThanOrEqual(Math.ceil(total / 1000));

    const res = await request(s.baseUrl).get('/fhir/AuditEvent?_format=csv').set('authorization', `Bearer ${auditor}`).buffer(true).parse(binary);
    const rows = parseCsv(res.body as string).slice(1);
    // The export's own event was written before it started, so it is included.
    expect(rows).toHaveLength(total + 1);
    expect(new Set(rows.map((r) => r[0])).size).toBe(total + 1);
  });
});
