import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { PointerPolicy } from '../access/policy';
import type { Principal } from '../access/principal';
import { hasScope } from '../access/principal';
import type { AuditRecord } from '../audit/audit-event';
import { FhirError, badRequest, forbidden, informational, operationOutcome } from '../fhir/errors';
import type { Database, Queryable } from '../store/database';
import { readResource, vreadResource } from './read';
import type { ResourceTypeDef } from './resource-types';
import { resourceTypeDef } from './resource-types';
import { searchResources } from './search';
import type { WriteOutcome, WriteRequest } from './write-engine';
import { writeResources } from './write-engine';

export const MAX_BUNDLE_ENTRIES = 1000;

const bundleSchema = z
  .object({
    resourceType: z.literal('Bundle'),
    id: z.string().optional(),
    meta: z.object({}).loose().optional(),
    type: z.enum(['transaction', 'batch'], { message: 'Bundle.type must be transaction or batch' }),
    entry: z
      .array(
        z
          .object({
            fullUrl: z.string().max(2048).optional(),
            resource: z.record(z.string(), z.unknown()).optional(),
            request: z
              .object({
                method: z.enum(['GET', 'POST', 'PUT', 'DELETE']),
                url: z.string().min(1).max(4096),
                ifMatch: z.string().max(64).optional(),
                ifNoneExist: z.string().max(2048).optional(),
              })
              .loose(),
          })
          .loose(),
      )
      .max(MAX_BUNDLE_ENTRIES, `a Bundle may carry at most ${MAX_BUNDLE_ENTRIES} entries`)
      .default([]),
  })
  .loose();

export interface BundleDeps {
  db: Database;
  principal: Principal;
  policy: PointerPolicy;
  fhirBase: string;
  maxPageSize: number;
  defaultPageSize: number;
  audit(q: Queryable, record: Partial<AuditRecord> & Pick<AuditRecord, 'subtype' | 'action' | 'outcome'>): Promise<void>;
}

interface ParsedEntry {
  index: number;
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  def: ResourceTypeDef;
  id?: string;
  version?: number;
  query?: string;
  write?: WriteRequest;
}

function parseEntryUrl(raw: string, index: number): { def: ResourceTypeDef; id?: string; version?: number; query?: string } {
  const at = `Bundle.entry[${index}].request.url`;
  const url = raw.replace(/^https?:\/\/[^/]+\/(?:.*\/)?fhir\//, '');
  const m = /^([A-Za-z]+)(?:\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/(\d{1,9}))?)?(?:\?(.*))?$/.exec(url);
  if (!m) throw badRequest(`${at}: cannot read ${raw} as Type, Type/id or Type?query`, at);
  const def = resourceTypeDef(m[1] as string);
  if (!def) throw new FhirError(400, 'not-supported', `${at}: resource type ${m[1]} is not served by this registry`, 'INVALID_PARAMETER', at);
  return { def, id: m[2], version: m[3] ? Number(m[3]) : undefined, query: m[4] };
}

function parseEntries(bundle: z.infer<typeof bundleSchema>): ParsedEntry[] {
  return bundle.entry.map((e, index) => {
    const { def, id, version, query } = parseEntryUrl(e.request.url, index);
    const method = e.request.method;
    const base = { index, method, def, id, version, query };
    if (method === 'GET') return base;
    const at = `Bundle.entry[${index}].resource`;
    if (method !== 'DELETE' && (!e.resource || e.resource.resourceType !== def.type)) {
      throw badRequest(`${at}: a ${method} of ${def.type} needs a ${def.type} resource`, at, 'INVALID_RESOURCE');
    }
    if (method === 'PUT' && !id && query === undefined) throw badRequest(`Bundle.entry[${index}].request.url: PUT needs Type/id or Type?condition`);
    if (method === 'DELETE' && !id) throw badRequest(`Bundle.entry[${index}].request.url: DELETE needs Type/id (conditional delete is not supported)`);
    const conditional = method === 'POST' ? e.request.ifNoneExist : method === 'PUT' && !id ? query : undefined;
    const write: WriteRequest = { method, def, id, conditional, ifMatch: e.request.ifMatch, resource: e.resource, fullUrl: e.fullUrl, at };
    return { ...base, write };
  });
}

const STATUS_TEXT: Record<number, string> = { 200: '200 OK', 201: '201 Created' };

function writeResponse(o: WriteOutcome): string {
  const outcome = informational(o.code === 'RESOURCE_DELETED' ? 'RESOURCE_DELETED_OK' : o.code === 'RESOURCE_EXISTS' ? 'RESOURCE_UNCHANGED' : o.code, describe(o));
  return JSON.stringify({
    response: {
      status: STATUS_TEXT[o.status],
      location: `${o.type}/${o.id}/_history/${o.version}`,
      etag: `W/"${o.version}"`,
      lastModified: o.lastUpdated,
      outcome,
    },
  });
}

export function describe(o: WriteOutcome): string {
  switch (o.code) {
    case 'RESOURCE_CREATED': return `${o.type}/${o.id} created${o.superseded.length ? `, superseding ${o.superseded.map((s) => `DocumentReference/${s}`).join(', ')}` : ''}`;
    case 'RESOURCE_UPDATED': return `${o.type}/${o.id} updated to version ${o.version}`;
    case 'RESOURCE_UNCHANGED': return `${o.type}/${o.id} unchanged: the update carried no change`;
    case 'RESOURCE_EXISTS': return `${o.type}/${o.id} already exists (conditional create)`;
    case 'RESOURCE_DELETED': return `${o.type}/${o.id} deleted`;
    default: return o.code;
  }
}

async function runGet(q: Queryable, e: ParsedEntry, deps: BundleDeps): Promise<{ text: string; patients: string[]; returned: { type: string; id: string; version: number }[] }> {
  const { def } = e;
  const letter = e.id ? 'r' : 's';
  if (!hasScope(deps.principal, def.type, letter)) throw forbidden(`the token's scopes do not allow ${e.id ? 'read' : 'search'} of ${def.type}`, 'ACCESS_DENIED_LEVEL');
  if (e.id) {
    const readDeps = { principal: deps.principal, policy: deps.policy };
    const r = e.version ? await vreadResource(q, def, e.id, e.version, readDeps) : await readResource(q, def, e.id, readDeps);
    const entry = `{"resource":${r.text},"response":{"status":"200 OK","etag":"W/\\"${r.version}\\"","lastModified":"${r.lastUpdated}"}}`;
    return { text: entry, patients: r.patient ? [r.patient] : [], returned: [{ type: def.type, id: e.id, version: r.version }] };
  }
  const params = [...new URLSearchParams(e.query ?? '')];
  const s = await searchResources(q, { def, params, strict: false, principal: deps.principal, policy: deps.policy, fhirBase: deps.fhirBase, maxPageSize: deps.maxPageSize, defaultPageSize: deps.defaultPageSize });
  return { text: `{"resource":${s.bundle},"response":{"status":"200 OK"}}`, patients: s.patients, returned: s.returned };
}

function errorEntry(e: unknown): string {
  const err = e instanceof FhirError ? e : new FhirError(500, 'exception', 'the entry could not be processed', 'INTERNAL_SERVER_ERROR');
  return JSON.stringify({ response: { status: String(err.status), outcome: operationOutcome(err.issues) } });
}

export interface BundleResult {
  text: string;
}

/**
 * ITI-65 / FHIR transaction (R4 §3.1.0.11): all-or-nothing, entries answered in request order;
 * writes processed as one set (deletes, creates and updates) before reads. Batch: each entry on
 * its own, failures reported per entry.
 */
export async function processBundle(body: unknown, deps: BundleDeps): Promise<BundleResult> {
  const parsed = bundleSchema.safeParse(body);
  if (!parsed.success) {
    const i = parsed.error.issues[0];
    throw badRequest(`Bundle${i?.path.length ? `.${i.path.join('.')}` : ''}: ${i?.message ?? 'invalid'}`, 'Bundle', 'INVALID_RESOURCE');
  }
  const bundle = parsed.data;
  const entries = parseEntries(bundle);
  const id = randomUUID();
  const responses: string[] = new Array(entries.length);
  if (bundle.type === 'transaction') {
    await deps.db.transaction(async (tx) => {
      const writes = entries.filter((e) => e.write);
      const order = { DELETE: 0, POST: 1, PUT: 2, GET: 3 };
      writes.sort((a, b) => order[a.method] - order[b.method] || a.index - b.index);
      const outcomes = await writeResources(tx, deps.principal, writes.map((e) => e.write as WriteRequest));
      writes.forEach((e, i) => {
        responses[e.index] = writeResponse(outcomes[i] as WriteOutcome);
      });
      const patients = outcomes.flatMap((o) => (o.patient ? [o.patient] : []));
      const touched = outcomes.map((o) => ({ type: o.type, id: o.id, version: o.version }));
      for (const e of entries.filter((x) => x.method === 'GET')) {
        const r = await runGet(tx, e, deps);
        responses[e.index] = r.text;
        patients.push(...r.patients);
        touched.push(...r.returned);
      }
      await deps.audit(tx, { subtype: 'transaction', action: writes.length > 0 ? 'C' : 'R', outcome: '0', patients, entities: touched });
    });
    return { text: `{"resourceType":"Bundle","id":"${id}","type":"transaction-response","entry":[${responses.join(',')}]}` };
  }
  for (const e of entries) {
    try {
      if (e.write) {
        const w = e.write;
        responses[e.index] = await deps.db.transaction(async (tx) => {
          const [o] = await writeResources(tx, deps.principal, [w]);
          const outcome = o as WriteOutcome;
          const action = e.method === 'POST' ? 'C' : e.method === 'PUT' ? 'U' : 'D';
          await deps.audit(tx, { subtype: 'batch', action, outcome: '0', patients: outcome.patient ? [outcome.patient] : [], entities: [{ type: outcome.type, id: outcome.id, version: outcome.version }] });
          return writeResponse(outcome);
        });
      } else {
        const r = await runGet(deps.db, e, deps);
        await deps.audit(deps.db, { subtype: 'batch', action: e.id ? 'R' : 'E', outcome: '0', patients: r.patients, entities: r.returned, query: e.query });
        responses[e.index] = r.text;
      }
    } catch (err) {
      if (err instanceof FhirError) {
        await deps.audit(deps.db, { subtype: 'batch', action: e.method === 'GET' ? 'R' : 'C', outcome: '4', outcomeDesc: err.message, patients: [], entities: [] });
      } else if (!(err instanceof Error && err.name === 'StoreUnavailableError')) {
        // Unknown failures of one batch entry are reported on that entry, not the whole batch.
      } else {
        throw err;
      }
      responses[e.index] = errorEntry(err);
    }
  }
  return { text: `{"resourceType":"Bundle","id":"${id}","type":"batch-response","entry":[${responses.join(',')}]}` };
}
