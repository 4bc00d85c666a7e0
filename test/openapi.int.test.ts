import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Ajv2020 from 'ajv/dist/2020';
import type { ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import request from 'supertest';
import { parse } from 'yaml';
import { aConsent } from '../src/demo/seed';
import { federationExtension } from '../src/federation/extension';
import { dispatchOutbox } from '../src/notify/dispatch';
import { startTestServer } from './helpers/server';
import type { TestServer } from './helpers/server';
import { FHIR_JSON, NHS, aDocument, aStudy, anEndpoint, anOrganization, nextUid, patient, registerNetwork } from './helpers/fixtures';
import { WALES, federationConfig, federationKey } from './federation/support';
import { aSubscription } from './notify/support';
import type { FakePacs } from './resolve/fake-pacs';
import { startFakePacs } from './resolve/fake-pacs';

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
  const pattern = new RegExp(`^${segments.map((s) => (s.startsWith('{') ? '[^/]+' : s.replace(/[.$]/g, '\\$&'))).join('/')}$`);
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
let pacs: FakePacs;
let endpointId: string;
let publisher: string;
let other: string;
let clinician: string;
let admin: string;
let auditor: string;

type Method = 'get' | 'post' | 'put' | 'delete';
/** raw: keep any body as text (DICOMweb multipart and images are not text to supertest). */
interface CallOptions { token?: string; body?: unknown; headers?: Record<string, string>; form?: string; cookie?: string; raw?: boolean }

async function call(method: Method, url: string, opts: CallOptions = {}): Promise<{ status: number; body: Json; headers: Record<string, string> }> {
  let r = request(s.baseUrl)[method](url);
  if (opts.raw) {
    r = r.buffer(true).parse((res, done) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        (res as unknown as { text: string }).text = Buffer.concat(chunks).toString('latin1');
        done(null, undefined);
      });
    });
  }
  if (opts.token) r = r.set('authorization', `Bearer ${opts.token}`);
  if (opts.cookie) r = r.set('cookie', opts.cookie);
  for (const [k, v] of Object.entries(opts.headers ?? {})) r = r.set(k, v);
  if (opts.form !== undefined) r = r.set('content-type', 'application/x-www-form-urlencoded').send(opts.form);
  else if (opts.body !== undefined) r = r.set('content-type', opts.headers?.['content-type'] ?? FHIR_JSON).send(typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body));
  const res = await r;
  return { status: res.status, body: conform(method.toUpperCase(), url, res), headers: res.headers as Record<string, string> };
}

const search = (nhs: string): string => `/fhir/ImagingStudy?patient.identifier=${encodeURIComponent(`${NHS}|${nhs}`)}`;

const savedEnv = { ...process.env };

beforeAll(async () => {
  // The gateway's PACS timeout (504 in a second, not 30), and no delivery worker: $events numbering is driven by the test.
  Object.assign(process.env, { LOCUS_GATEWAY_TIMEOUT_MS: '700', LOCUS_NOTIFY: 'false', LOCUS_NOTIFY_ALLOW_PRIVATE: 'true' });
  pacs = await startFakePacs();
  // Federation configured (a peer with no agreement in force, so it is never called): targetCommunityIdList is served.
  const peer = { communityId: WALES, name: 'Wales', fhirBase: 'http://127.0.0.1:9/fhir', organization: 'W01', agreementId: 'wales-imaging' };
  s = await startTestServer({ extensions: [federationExtension(federationConfig((await federationKey()).privateJwk, [peer]))] });
  const net = await registerNetwork(s, [{ ods: 'RRK' }, { ods: 'RJE' }]);
  endpointId = net.RRK?.endpointId as string;
  publisher = await s.tokenFor('RRK', 'publisher');
  other = await s.tokenFor('RJE', 'publisher');
  clinician = await s.tokenFor('RJE', 'clinician');
  admin = await s.tokenFor('ADMIN', 'admin');
  auditor = await s.tokenFor('RRK', 'auditor');
});
afterAll(async () => {
  process.env = savedEnv;
  await s?.close();
  await pacs?.stop();
});

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
    expect(templateOf('/fhir/ImagingStudy/abc/$resolve')).toBe('/fhir/{type}/{id}/$resolve');
    expect(templateOf('/fhir/Subscription/abc')).toBe('/fhir/Subscription/{id}');
    expect(templateOf('/fhir/Subscription/abc/$status')).toBe('/fhir/Subscription/{id}/$status');
    expect(templateOf('/fhir/Subscription/abc/$events')).toBe('/fhir/Subscription/{id}/$events');
    expect(templateOf('/fhir/Subscription/abc/xstatus')).toBeUndefined();
    expect(templateOf('/dicomweb/RRK/studies/1.2/series/3.4/instances/5.6/frames/1,2')).toBe('/dicomweb/{ods}/studies/{study}/series/{series}/instances/{instance}/frames/{frames}');
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
    for (const url of ['/healthz', '/readyz', '/.well-known/smart-configuration', '/fhir/metadata', '/.well-known/jwks.json', '/.well-known/locus-federation-jwks.json']) {
      expect((await call('get', url)).status).toBe(200);
    }
    for (const url of ['/viewer/assets/viewer.css', '/viewer/assets/nhsuk-frontend.min.css', '/audit/assets/audit.css', '/audit/assets/nhsuk-frontend.min.css']) expect((await call('get', url)).status).toBe(200);
    expect((await call('get', '/audit/assets/images/no-such-image.svg', { raw: true })).status).toBe(404);
  });

  it('when the CapabilityStatement is read, then it lists Subscription with $status and $events, $resolve on the pointers, and targetCommunityIdList', async () => {
    const cs = (await call('get', '/fhir/metadata')).body as { rest: { resource: { type: string; interaction: { code: string }[]; operation?: { name: string }[]; searchParam?: { name: string }[] }[] }[] };
    const resources = cs.rest[0]?.resource ?? [];
    expect(resources.filter((r) => r.type === 'Subscription')).toHaveLength(1);
    const sub = resources.find((r) => r.type === 'Subscription');
    expect((sub?.operation ?? []).map((o) => o.name).sort()).toEqual(['events', 'status']);
    expect((sub?.interaction ?? []).map((i) => i.code).sort()).toEqual(['create', 'delete', 'read', 'search-type', 'update']);
    expect((sub?.searchParam ?? []).map((p) => p.name).sort()).toEqual(['_id', 'status', 'url']);
    for (const type of ['ImagingStudy', 'DocumentReference']) {
      const entries = resources.filter((r) => r.type === type);
      expect(entries).toHaveLength(1);
      expect((entries[0]?.operation ?? []).map((o) => o.name)).toContain('resolve');
      expect((entries[0]?.searchParam ?? []).filter((p) => p.name === 'targetCommunityIdList')).toHaveLength(1);
    }
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

  it('when a federated search names target communities, then the merged Bundle and the refusals conform', async () => {
    const nhs = patient(21);
    expect((await call('post', '/fhir/ImagingStudy', { token: publisher, body: aStudy({ nhs, endpointId }) })).status).toBe(201);
    const q = `patient.identifier=${encodeURIComponent(`${NHS}|${nhs}`)}`;
    const merged = await call('get', `/fhir/ImagingStudy?${q}&targetCommunityIdList=all`, { token: clinician });
    const entries = merged.body.entry as { resource: { resourceType: string; extension?: { url: string }[] }; search: { mode: string } }[];
    expect(entries.map((e) => e.search.mode).sort()).toEqual(['match', 'outcome']);
    expect(entries.find((e) => e.search.mode === 'match')?.resource.extension?.length).toBeGreaterThan(0);
    expect((await call('post', '/fhir/DocumentReference/_search', { token: clinician, form: `subject:identifier=${encodeURIComponent(`${NHS}|${nhs}`)}&targetCommunityIdList=${WALES}` })).status).toBe(200);
    expect((await call('get', `/fhir/ImagingStudy?${q}&targetCommunityIdList=urn:oid:1.2.3.4`, { token: clinician })).status).toBe(400);
    expect((await call('get', '/fhir/Organization?targetCommunityIdList=all', { token: clinician })).status).toBe(400);
  });

  it('when pointers are resolved, then $resolve answers Parameters, and a withheld, missing or deleted pointer is refused as declared', async () => {
    const nhs = patient(22);
    const study = await call('post', '/fhir/ImagingStudy', { token: publisher, body: aStudy({ nhs, endpointId }) });
    const resolved = await call('get', `/fhir/ImagingStudy/${String(study.body.id)}/$resolve`, { token: clinician });
    expect(resolved.status).toBe(200);
    const doc = await call('post', '/fhir/DocumentReference', { token: publisher, body: aDocument({ nhs, custodian: 'RRK' }) });
    const docResolved = await call('get', `/fhir/DocumentReference/${String(doc.body.id)}/$resolve`, { token: clinician });
    expect((docResolved.body.parameter as { name: string }[]).map((p) => p.name)).toContain('attachmentUrl');
    const hiddenNhs = patient(23);
    const hidden = await call('post', '/fhir/ImagingStudy', { token: publisher, body: aStudy({ nhs: hiddenNhs, endpointId }) });
    expect((await call('post', '/fhir/Consent', { token: admin, body: aConsent(hiddenNhs, [], 'RRK') })).status).toBe(201);
    expect((await call('get', `/fhir/ImagingStudy/${String(hidden.body.id)}/$resolve`, { token: clinician })).status).toBe(404);
    expect((await call('get', '/fhir/ImagingStudy/no-such-id/$resolve', { token: clinician })).status).toBe(404);
    expect((await call('get', `/fhir/ImagingStudy/${String(study.body.id)}/$resolve`)).status).toBe(401);
    expect((await call('get', `/fhir/ImagingStudy/${String(study.body.id)}/$resolve`, { token: auditor })).status).toBe(403);
    expect((await call('delete', `/fhir/ImagingStudy/${String(study.body.id)}`, { token: publisher })).status).toBe(200);
    expect((await call('get', `/fhir/ImagingStudy/${String(study.body.id)}/$resolve`, { token: clinician })).status).toBe(410);
  });

  it('when the DICOMweb gateway is asked, then its answers (streamed from the PACS, or refusals) conform', async () => {
    const org = await call('post', '/fhir/Organization', { token: admin, body: anOrganization('RGT') });
    const ep = await call('post', '/fhir/Endpoint', { token: admin, body: anEndpoint(String(org.body.id), pacs.root) });
    const uid = nextUid();
    const rgt = await s.tokenFor('RGT', 'publisher');
    const study = await call('post', '/fhir/ImagingStudy', { token: rgt, body: aStudy({ nhs: patient(24), uid, endpointId: String(ep.body.id) }) });
    const resolved = await call('get', `/fhir/ImagingStudy/${String(study.body.id)}/$resolve`, { token: clinician });
    const token = (resolved.body.parameter as { name: string; part?: { name: string; valueString?: string }[] }[]).find((p) => p.name === 'retrievalToken')?.part?.find((p) => p.name === 'token')?.valueString as string;
    const root = `/dicomweb/RGT/studies`;
    pacs.behave((_req, res) => res.writeHead(200, { 'content-type': 'multipart/related; type="application/dicom"; boundary=locus' }).end('--locus\r\ncontent-type: application/dicom\r\n\r\nDICM\r\n--locus--\r\n'));
    expect((await call('get', `${root}/${uid}`, { token, raw: true })).status).toBe(200);
    pacs.behave((_req, res) => res.writeHead(200, { 'content-type': 'application/dicom+json' }).end('[{"0020000D":{"vr":"UI","Value":["1.2"]}}]'));
    expect((await call('get', `${root}?StudyInstanceUID=${uid}`, { token, raw: true })).status).toBe(200);
    expect((await call('get', `${root}/${uid}/series/1.2.3/metadata`, { token: clinician, raw: true })).status).toBe(200);
    pacs.behave((_req, res) => res.writeHead(204).end());
    expect((await call('get', `${root}/${uid}/series?Modality=CT`, { token, raw: true })).status).toBe(204);
    pacs.behave((_req, res) => res.writeHead(404).end('no such study'));
    expect((await call('get', `${root}/${uid}/series/1.2.3/instances/4.5.6/frames/1,2`, { token, raw: true })).status).toBe(404);
    pacs.behave((_req, res) => res.writeHead(500).end('boom'));
    expect((await call('get', `${root}/${uid}/metadata`, { token, raw: true })).status).toBe(502);
    pacs.behave(() => undefined); // never answers
    expect((await call('get', `${root}/${uid}/metadata`, { token, raw: true })).status).toBe(504);
    const refusals: [string, string | undefined, number][] = [
      [`${root}/${uid}`, undefined, 401],
      [`${root}/${uid}`, 'not.a.jwt', 401],
      [`/dicomweb/RRK/studies/${uid}`, token, 401],
      [`${root}/${nextUid()}`, token, 403],
      [`${root}/${uid}`, auditor, 403],
      [`${root}/${nextUid()}`, clinician, 404],
      [root, token, 400],
      [`${root}/not-a-uid`, token, 400],
      [`${root}/${uid}/series/1.2/instances/3.4/frames/0`, token, 400],
    ];
    for (const [url, t, status] of refusals) {
      const res = await call('get', url, { token: t, raw: true });
      expect([url, res.status]).toEqual([url, status]);
      expect((res.body.issue as { details?: { coding?: { code?: string }[] } }[])[0]?.details?.coding?.[0]?.code).toMatch(/^[A-Z_]+$/);
    }
  });

  it('when Subscriptions are created, listed, read, updated, queried and deleted, then every answer conforms', async () => {
    const nhs = patient(25);
    const subscriber = await s.tokenFor('RJE', 'system', { scope: 'system/Subscription.cruds' });
    const otherSubscriber = await s.tokenFor('RQ3', 'system', { scope: 'system/Subscription.cruds' });
    const body = aSubscription({ endpoint: 'https://127.0.0.1:9/hook', patient: nhs, payload: 'full-resource' });
    const created = await call('post', '/fhir/Subscription', { token: subscriber, body });
    expect(created.status).toBe(201);
    const id = String(created.body.id);
    expect((await call('post', '/fhir/ImagingStudy', { token: publisher, body: aStudy({ nhs, endpointId }) })).status).toBe(201);
    await dispatchOutbox(s.db, 100);
    expect(((await call('get', '/fhir/Subscription', { token: subscriber })).body.entry as unknown[]).length).toBe(1);
    expect((await call('get', '/fhir/Subscription?status=requested,active&url=https%3A%2F%2F127.0.0.1%3A9%2Fhook&_count=5', { token: subscriber })).body.total).toBe(1);
    expect((await call('get', '/fhir/Subscription?status=nonsense', { token: subscriber })).status).toBe(400);
    expect((await call('get', `/fhir/Subscription/${id}`, { token: subscriber })).status).toBe(200);
    const status = await call('get', `/fhir/Subscription/${id}/$status`, { token: subscriber });
    expect(status.status).toBe(200);
    const events = await call('get', `/fhir/Subscription/${id}/$events`, { token: subscriber });
    expect((events.body.entry as unknown[]).length).toBe(2);
    expect((await call('get', `/fhir/Subscription/${id}/$events?content=id-only&eventsSinceNumber=1`, { token: subscriber })).status).toBe(200);
    expect((await call('get', `/fhir/Subscription/${id}/$events?eventsSinceNumber=x`, { token: subscriber })).status).toBe(400);
    const updated = await call('put', `/fhir/Subscription/${id}`, { token: subscriber, headers: { 'if-match': 'W/"1"' }, body: { ...body, id, status: 'off' } });
    expect(updated.status).toBe(200);
    expect((await call('put', `/fhir/Subscription/${id}`, { token: subscriber, headers: { 'if-match': 'W/"1"' }, body: { ...body, id } })).status).toBe(412);
    expect((await call('get', `/fhir/Subscription/${id}`, { token: otherSubscriber })).status).toBe(404);
    expect((await call('get', `/fhir/Subscription/${id}/$status`, { token: otherSubscriber })).status).toBe(404);
    expect((await call('post', '/fhir/Subscription', { token: subscriber, body: { ...body, criteria: 'ImagingStudy?' } })).status).toBe(422);
    expect((await call('post', '/fhir/Subscription', { token: subscriber, body, headers: { 'content-type': 'text/plain' } })).status).toBe(415);
    expect((await call('post', '/fhir/Subscription', { token: clinician, body })).status).toBe(403);
    expect((await call('get', '/fhir/Subscription')).status).toBe(401);
    expect((await call('delete', `/fhir/Subscription/${id}`, { token: subscriber })).status).toBe(200);
    expect((await call('get', `/fhir/Subscription/${id}`, { token: subscriber })).status).toBe(404);
  });

  it('when the prior-imaging page is used, then its pages and redirects conform', async () => {
    const nhs = patient(26);
    const study = await call('post', '/fhir/ImagingStudy', { token: publisher, body: aStudy({ nhs, endpointId }) });
    expect((await call('get', '/viewer')).status).toBe(200);
    const login = await call('post', '/viewer/login', { form: `token=${clinician}` });
    expect(login.status).toBe(303);
    const cookie = String(login.headers['set-cookie']).split(';')[0] as string;
    expect((await call('get', '/viewer', { cookie })).status).toBe(200);
    expect((await call('get', `/viewer?nhs=${nhs}`, { cookie })).status).toBe(200);
    expect((await call('get', '/viewer?nhs=123', { cookie })).status).toBe(400);
    expect((await call('get', `/viewer/open?type=ImagingStudy&id=${String(study.body.id)}`, { cookie })).status).toBe(200);
    expect((await call('get', '/viewer/open?type=ImagingStudy&id=no-such-id', { cookie })).status).toBe(404);
    expect((await call('post', '/viewer/break-glass', { cookie, form: `nhs=${nhs}&reason=${encodeURIComponent('unconscious in ED, prior CT needed')}` })).status).toBe(403);
    expect((await call('post', '/viewer/login', { form: 'token=%21%21' })).status).toBe(400);
    expect((await call('post', '/viewer/login', { form: 'token=not.a.jwt' })).status).toBe(401);
    expect((await call('post', '/viewer/login', { form: `token=${clinician}`, headers: { origin: 'https://elsewhere.example' } })).status).toBe(403);
    expect((await call('get', '/viewer', { cookie: 'locus_viewer_session=not.a.jwt' })).status).toBe(401);
    expect((await call('post', '/viewer/logout')).status).toBe(303);
  });

  it('when the audit review page is used, then its pages, CSV export and redirects conform', async () => {
    expect((await call('get', '/audit')).status).toBe(200);
    const login = await call('post', '/audit/login', { form: `token=${auditor}` });
    expect(login.status).toBe(303);
    const cookie = String(login.headers['set-cookie']).split(';')[0] as string;
    expect((await call('get', '/audit', { cookie })).status).toBe(200);
    expect((await call('get', '/audit?patient=123', { cookie })).status).toBe(400);
    const csv = await call('get', '/audit/export.csv?outcome=success', { cookie });
    expect(csv.status).toBe(200);
    expect(String(csv.body.text).split('\n').length).toBeGreaterThan(1);
    expect((await call('get', '/audit/export.csv')).status).toBe(401);
    expect((await call('post', '/audit/login', { form: `token=${clinician}` })).status).toBe(403);
    expect((await call('post', '/audit/dev-login', { form: 'org=RRK' })).status).toBe(404);
    expect((await call('post', '/audit/logout')).status).toBe(303);
  });

  it('when the run is over, then every status the API promises for these interactions was met at least once', () => {
    const statuses = new Set([...exercised].map((e) => e.split(' ')[2]));
    for (const status of ['200', '201', '204', '303', '400', '401', '403', '404', '406', '409', '410', '412', '415', '422', '502', '504']) expect([status, statuses.has(status)]).toEqual([status, true]);
  });
});
