import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Ajv2020 from 'ajv/dist/2020';
import type { ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import request from 'supertest';
import { parse } from 'yaml';
import { startTestServer } from './helpers/server';
import type { TestServer } from './helpers/server';
import { FHIR_JSON, NHS, aDocument, aStudy, anOrganization, nextUid, patient, registerNetwork } from './helpers/fixtures';

/**
 * openapi.yaml against the running server: every real response's status must be declared for
 * its path and method, and its body must validate against the declared schema.
 */
type Json = Record<string, unknown>;
interface MediaType { schema?: Json }
interface ResponseDef { description: string; content?: Record<string, MediaType>; $ref?: string }
interface Operation { responses: Record<string, ResponseDef> }
interface OpenApi { paths: Record<string, Record<string, Operation | unknown>>; components: { schemas: Record<string, Json>; responses: Record<string, ResponseDef> } }

const doc = parse(readFileSync(join(__dirname, '..', 'openapi.yaml'), 'utf8')) as OpenApi;
const BASE = 'https://locus.nhs.example/openapi/schemas/';

/** `#/components/schemas/X` becomes an absolute id ajv can resolve among the added schemas. */
function rewriteRefs(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(rewriteRefs);
  if (node && typeof node === 'object') {
    return Object.fromEntries(
      Object.entries(node).map(([k, v]) => [k, k === '$ref' && typeof v === 'string' ? v.replace('#/components/schemas/', BASE) : rewriteRefs(v)]),
    );
  }
  return node;
}

// strict: an unknown keyword (often a YAML flow-mapping comma gone wrong) fails the test.
const ajv = new Ajv2020({ allErrors: true, strict: true, strictTypes: false });
addFormats(ajv);
for (const [name, schema] of Object.entries(doc.components.schemas)) ajv.addSchema({ ...(rewriteRefs(schema) as Json), $id: `${BASE}${name}` });

const templates = Object.keys(doc.paths).map((template) => {
  const segments = template.split('/');
  const pattern = new RegExp(`^${segments.map((s) => (s.startsWith('{') ? '[^/]+' : s.replace(/[.]/g, '\\.'))).join('/')}$`);
  return { template, pattern, literals: segments.filter((s) => s && !s.startsWith('{')).length };
});

/** The OpenAPI path template for a concrete path: of those that match, the one with the most literal segments. */
function templateOf(path: string): string | undefined {
  return templates.filter((t) => t.pattern.test(path)).sort((a, b) => b.literals - a.literals)[0]?.template;
}

function responseDef(r: ResponseDef): ResponseDef {
  return r.$ref ? (doc.components.responses[r.$ref.replace('#/components/responses/', '')] as ResponseDef) : r;
}

const validators = new Map<string, ValidateFunction>();
const exercised = new Set<string>();

/** Checks one real response against the document; returns the parsed body. */
function conform(method: string, url: string, res: request.Response): Json {
  const path = url.split('?')[0] as string;
  const template = templateOf(path);
  if (!template) throw new Error(`${method} ${path}: no path of openapi.yaml matches`);
  const op = doc.paths[template]?.[method.toLowerCase()] as Operation | undefined;
  if (!op) throw new Error(`${method} ${template}: the method is not declared`);
  const declared = op.responses[String(res.status)];
  if (!declared) throw new Error(`${method} ${template}: status ${res.status} is not declared (body ${res.text.slice(0, 300)})`);
  exercised.add(`${method} ${template} ${res.status}`);
  const def = responseDef(declared);
  if (!res.text) return {};
  const mediaType = String(res.headers['content-type'] ?? '').split(';')[0] as string;
  const schema = def.content?.[mediaType]?.schema;
  if (!schema) throw new Error(`${method} ${template} ${res.status}: a ${mediaType} body is not declared`);
  const key = `${method} ${template} ${res.status} ${mediaType}`;
  let validate = validators.get(key);
  if (!validate) {
    validate = ajv.compile(rewriteRefs(schema) as Json);
    validators.set(key, validate);
  }
  // Exports (CSV, NDJSON) are declared as strings: the raw text is what is validated.
  const body = /[/+]json$/.test(mediaType) ? (JSON.parse(res.text) as Json) : res.text;
  if (!validate(body)) throw new Error(`${key}: body does not match the schema: ${ajv.errorsText(validate.errors, { separator: '\n  ' })}`);
  return typeof body === 'string' ? { text: body } : body;
}

let s: TestServer;
let endpointId: string;
let publisher: string;
let other: string;
let clinician: string;
let admin: string;
let auditor: string;

type Method = 'get' | 'post' | 'put' | 'delete';
interface CallOptions { token?: string; body?: unknown; headers?: Record<string, string>; form?: string }

async function call(method: Method, url: string, opts: CallOptions = {}): Promise<{ status: number; body: Json; headers: Record<string, string> }> {
  let r = request(s.baseUrl)[method](url);
  if (opts.token) r = r.set('authorization', `Bearer ${opts.token}`);
  for (const [k, v] of Object.entries(opts.headers ?? {})) r = r.set(k, v);
  if (opts.form !== undefined) r = r.set('content-type', 'application/x-www-form-urlencoded').send(opts.form);
  else if (opts.body !== undefined) r = r.set('content-type', opts.headers?.['content-type'] ?? FHIR_JSON).send(typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body));
  const res = await r;
  return { status: res.status, body: conform(method.toUpperCase(), url, res), headers: res.headers as Record<string, string> };
}

const search = (nhs: string): string => `/fhir/ImagingStudy?patient.identifier=${encodeURIComponent(`${NHS}|${nhs}`)}`;

beforeAll(async () => {
  s = await startTestServer();
  const net = await registerNetwork(s, [{ ods: 'RRK' }, { ods: 'RJE' }]);
  endpointId = net.RRK?.endpointId as string;
  publisher = await s.tokenFor('RRK', 'publisher');
  other = await s.tokenFor('RJE', 'publisher');
  clinician = await s.tokenFor('RJE', 'clinician');
  admin = await s.tokenFor('ADMIN', 'admin');
  auditor = await s.tokenFor('RRK', 'auditor');
});
afterAll(async () => s.close());

describe('the path matcher and the validator', () => {
  it('when a concrete path is given, then the most specific template wins', () => {
    expect(templateOf('/fhir/metadata')).toBe('/fhir/metadata');
    expect(templateOf('/fhir/ImagingStudy')).toBe('/fhir/{type}');
    expect(templateOf('/fhir/ImagingStudy/_search')).toBe('/fhir/{type}/_search');
    expect(templateOf('/fhir/ImagingStudy/abc')).toBe('/fhir/{type}/{id}');
    expect(templateOf('/fhir/ImagingStudy/abc/_history/2')).toBe('/fhir/{type}/{id}/_history/{vid}');
    expect(templateOf('/fhir/AuditEvent')).toBe('/fhir/AuditEvent');
    expect(templateOf('/fhir/AuditEvent/_search')).toBe('/fhir/AuditEvent/_search');
    expect(templateOf('/fhir/AuditEvent/abc')).toBe('/fhir/AuditEvent/{id}');
    expect(templateOf('/nowhere')).toBeUndefined();
  });

  it('when a pointer lacks a profile-required element, then its schema rejects it', () => {
    const validate = ajv.getSchema(`${BASE}ImagingStudy`) as ValidateFunction;
    const study: Record<string, unknown> = { ...aStudy({ endpointId: 'e1' }), id: 'x', meta: { versionId: '1', lastUpdated: '2024-05-01T10:00:00.000Z' } };
    expect(validate(study)).toBe(true);
    const { subject: _subject, ...noSubject } = study;
    expect(validate(noSubject)).toBe(false);
    expect(validate({ ...study, identifier: [{ system: 'urn:other', value: '1' }] })).toBe(false);
  });
});

describe('real responses conform to openapi.yaml', () => {
  it('when the unauthenticated endpoints are asked, then they conform', async () => {
    for (const url of ['/healthz', '/readyz', '/.well-known/smart-configuration', '/fhir/metadata']) expect((await call('get', url)).status).toBe(200);
  });

  it('when Organizations and Endpoints are written and read, then they conform', async () => {
    const org = await call('post', '/fhir/Organization', { token: admin, body: anOrganization('RQ3') });
    expect(org.status).toBe(201);
    expect((await call('get', `/fhir/Organization/${String(org.body.id)}`, { token: clinician })).status).toBe(200);
    expect((await call('get', `/fhir/Endpoint/${endpointId}`, { token: clinician })).status).toBe(200);
    expect((await call('get', '/fhir/Endpoint?organization:identifier=RRK', { token: clinician })).status).toBe(200);
    expect((await call('post', '/fhir/Organization', { token: admin, body: { ...org.body, id: undefined, meta: undefined } })).status).toBe(409);
  });

  it('when a pointer goes through create, read, vread, history, search, update and delete, then every answer conforms', async () => {
    const nhs = patient(11);
    const created = await call('post', '/fhir/ImagingStudy', { token: publisher, body: aStudy({ nhs, endpointId, accession: 'A1' }) });
    expect(created.status).toBe(201);
    const id = String(created.body.id);
    expect((await call('get', `/fhir/ImagingStudy/${id}`, { token: clinician })).status).toBe(200);
    expect((await call('get', `/fhir/ImagingStudy/${id}/_history/1`, { token: clinician })).status).toBe(200);
    const found = await call('get', `${search(nhs)}&_include=ImagingStudy:endpoint&unknown-param=1`, { token: clinician });
    expect((found.body.entry as unknown[]).length).toBe(3);
    expect((await call('post', '/fhir/ImagingStudy/_search', { token: clinician, form: `patient.identifier=${encodeURIComponent(`${NHS}|${nhs}`)}&_summary=count` })).status).toBe(200);
    const updated = await call('put', `/fhir/ImagingStudy/${id}`, { token: publisher, headers: { 'if-match': 'W/"1"' }, body: { ...created.body, description: 'CT Chest amended' } });
    expect(updated.status).toBe(200);
    expect((await call('put', `/fhir/ImagingStudy/${id}`, { token: publisher, headers: { 'if-match': 'W/"1"' }, body: created.body })).status).toBe(412);
    expect((await call('put', `/fhir/ImagingStudy/${id}`, { token: publisher, headers: { prefer: 'return=OperationOutcome' }, body: updated.body })).status).toBe(200);
    expect((await call('get', `/fhir/ImagingStudy/${id}/_history`, { token: clinician })).status).toBe(200);
    expect((await call('put', `/fhir/ImagingStudy/${id}`, { token: other, body: updated.body })).status).toBe(403);
    expect((await call('delete', `/fhir/ImagingStudy/${id}`, { token: publisher })).status).toBe(200);
    expect((await call('get', `/fhir/ImagingStudy/${id}`, { token: clinician })).status).toBe(410);
    expect((await call('get', `/fhir/ImagingStudy/${id}/_history/3`, { token: clinician })).status).toBe(410);
    expect((await call('get', `/fhir/ImagingStudy/${id}/_history`, { token: clinician })).status).toBe(200);
  });

  it('when conditional creates and updates are used, then 200, 201 and 412 answers conform', async () => {
    const uid = nextUid();
    const condition = `identifier=${encodeURIComponent(`urn:dicom:uid|urn:oid:${uid}`)}`;
    const study = aStudy({ nhs: patient(12), uid, endpointId });
    expect((await call('put', `/fhir/ImagingStudy?${condition}`, { token: publisher, body: study })).status).toBe(201);
    expect((await call('put', `/fhir/ImagingStudy?${condition}`, { token: publisher, body: { ...study, description: 'changed' } })).status).toBe(200);
    expect((await call('post', '/fhir/ImagingStudy', { token: publisher, headers: { 'if-none-exist': condition }, body: study })).status).toBe(200);
    expect((await call('post', '/fhir/ImagingStudy', { token: publisher, headers: { prefer: 'return=minimal' }, body: aStudy({ nhs: patient(12), endpointId }) })).status).toBe(201);
    const twice = aStudy({ nhs: patient(12), endpointId, accession: 'ACC-TWICE' });
    await call('post', '/fhir/ImagingStudy', { token: publisher, body: twice });
    await call('post', '/fhir/ImagingStudy', { token: publisher, body: aStudy({ nhs: patient(12), endpointId, accession: 'ACC-TWICE' }) });
    expect((await call('put', '/fhir/ImagingStudy?identifier=ACC-TWICE', { token: publisher, body: twice })).status).toBe(412);
  });

  it('when DocumentReferences are published and searched, then they conform', async () => {
    const nhs = patient(13);
    const first = await call('post', '/fhir/DocumentReference', { token: publisher, body: aDocument({ nhs, custodian: 'RRK' }) });
    expect(first.status).toBe(201);
    const report = await call('post', '/fhir/DocumentReference', { token: publisher, body: aDocument({ nhs, custodian: 'RRK', category: 'report', replaces: String(first.body.id) }) });
    expect(report.status).toBe(201);
    const found = await call('get', `/fhir/DocumentReference?subject:identifier=${encodeURIComponent(`${NHS}|${nhs}`)}&status=current,superseded`, { token: clinician });
    expect((found.body.entry as unknown[]).length).toBe(2);
  });

  it('when transaction and batch Bundles are posted, then their response Bundles conform', async () => {
    const nhs = patient(14);
    const tx = await call('post', '/fhir', {
      token: publisher,
      body: {
        resourceType: 'Bundle',
        type: 'transaction',
        entry: [
          { fullUrl: 'urn:uuid:0b9e1c33-0000-4000-8000-000000000001', resource: aStudy({ nhs, endpointId }), request: { method: 'POST', url: 'ImagingStudy' } },
          { resource: aStudy({ nhs, endpointId }), request: { method: 'POST', url: 'ImagingStudy' } },
          { request: { method: 'GET', url: `ImagingStudy?patient.identifier=${NHS}|${nhs}` } },
        ],
      },
    });
    expect(tx.body.type).toBe('transaction-response');
    const batch = await call('post', '/fhir', {
      token: publisher,
      body: { resourceType: 'Bundle', type: 'batch', entry: [{ request: { method: 'GET', url: 'ImagingStudy/no-such-id' } }, { resource: aStudy({ nhs, endpointId }), request: { method: 'POST', url: 'ImagingStudy' } }] },
    });
    expect(batch.body.type).toBe('batch-response');
    const invalid = { resourceType: 'Bundle', type: 'transaction', entry: [{ resource: { ...aStudy({ nhs, endpointId }), modality: [] }, request: { method: 'POST', url: 'ImagingStudy' } }] };
    expect((await call('post', '/fhir', { token: publisher, body: invalid })).status).toBe(422);
    expect((await call('post', '/fhir', { token: publisher, body: { resourceType: 'Bundle', type: 'collection' } })).status).toBe(400);
  });

  it('when an auditor reviews the trail, then searches, reads and exports conform', async () => {
    const nhs = patient(16);
    expect((await call('get', search(nhs), { token: clinician })).status).toBe(200);
    const found = await call('get', `/fhir/AuditEvent?patient=${encodeURIComponent(`${NHS}|${nhs}`)}&_count=5`, { token: auditor });
    const entries = found.body.entry as { resource: { id: string } }[];
    expect(entries.length).toBeGreaterThan(0);
    expect((await call('get', `/fhir/AuditEvent/${entries[0]?.resource.id as string}`, { token: auditor })).status).toBe(200);
    expect((await call('post', '/fhir/AuditEvent/_search', { token: auditor, form: '_count=2' })).status).toBe(200);
    const csv = await call('get', `/fhir/AuditEvent?patient=${encodeURIComponent(`${NHS}|${nhs}`)}&_format=csv`, { token: auditor });
    expect(String(csv.body.text).split('\n').length).toBeGreaterThan(1);
    expect((await call('get', '/fhir/AuditEvent?_count=1', { token: clinician })).status).toBe(403);
    expect((await call('get', '/fhir/AuditEvent/no-such-event', { token: auditor })).status).toBe(404);
  });

  it('when requests are wrong, then the errors are declared OperationOutcomes with Spine codes', async () => {
    const study = aStudy({ nhs: patient(15), endpointId });
    expect((await call('post', '/fhir/ImagingStudy', { token: publisher, body: study })).status).toBe(201);
    const cases: [Method, string, CallOptions, number][] = [
      ['get', search(patient(15)), {}, 401],
      ['get', search(patient(15)), { token: 'not.a.jwt' }, 401],
      ['get', '/fhir/ImagingStudy?modality=CT', { token: clinician }, 400],
      ['get', '/fhir/ImagingStudy?patient.identifier=1234567890', { token: clinician }, 400],
      ['get', '/fhir/ImagingStudy/bad$id', { token: clinician }, 400],
      ['post', '/fhir/ImagingStudy', { token: publisher, body: '{"resourceType":' }, 400],
      ['post', '/fhir/ImagingStudy', { token: clinician, body: aStudy({ endpointId }) }, 403],
      ['post', '/fhir/ImagingStudy', { token: other, body: aStudy({ endpointId }) }, 403],
      ['get', '/fhir/AuditEventX?x=1', { token: clinician }, 404],
      ['get', '/fhir/ImagingStudy/no-such-id', { token: clinician }, 404],
      ['put', '/fhir/ImagingStudy/no-such-id', { token: publisher, body: study }, 404],
      ['post', '/fhir/ImagingStudy', { token: publisher, body: study }, 409],
      ['post', '/fhir/ImagingStudy', { token: publisher, body: { ...study, subject: { identifier: { system: NHS, value: '1234567890' } } } }, 422],
      ['post', '/fhir/ImagingStudy', { token: publisher, body: aStudy({ endpointId: 'no-such-endpoint' }) }, 422],
      ['post', '/fhir/ImagingStudy', { token: publisher, body: study, headers: { 'content-type': 'text/plain' } }, 415],
      ['post', '/fhir/ImagingStudy/_search', { token: clinician, body: 'x', headers: { 'content-type': 'text/plain' } }, 415],
      ['get', search(patient(15)), { token: clinician, headers: { accept: 'text/html' } }, 406],
    ];
    for (const [method, url, opts, status] of cases) {
      const res = await call(method, url, opts);
      expect([method, url, res.status]).toEqual([method, url, status]);
      const issue = (res.body.issue as { details?: { coding?: { code?: string }[] } }[])[0];
      expect(issue?.details?.coding?.[0]?.code).toMatch(/^[A-Z_]+$/);
    }
  });

  it('when the run is over, then every status the API promises for these interactions was met at least once', () => {
    const statuses = new Set([...exercised].map((e) => e.split(' ')[2]));
    for (const status of ['200', '201', '400', '401', '403', '404', '406', '409', '410', '412', '415', '422']) expect([status, statuses.has(status)]).toEqual([status, true]);
  });
});
