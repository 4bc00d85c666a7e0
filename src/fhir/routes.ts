import type { HttpRequest as Request } from './http';
import { hasScope } from '../access/principal';
import type { Interaction } from '../access/principal';
import { processBundle, describe } from '../registry/bundle';
import { historyOf, readResource, vreadResource } from '../registry/read';
import type { ResourceTypeDef } from '../registry/resource-types';
import { resourceTypeDef } from '../registry/resource-types';
import { searchResources } from '../registry/search';
import type { WriteOutcome, WriteRequest } from '../registry/write-engine';
import { writeResources } from '../registry/write-engine';
import { federationOf } from '../federation/federation';
import { capabilityStatement } from './capability';
import { expectResourceType, jsonBody, queryParams } from './body';
import { FhirError, badRequest, forbidden, informational } from './errors';
import type { Ctx, Reply, RouteDef } from './pipeline';

const ID = /^[A-Za-z0-9\-.]{1,64}$/;

export function typeOf(req: Request): ResourceTypeDef {
  const type = String(req.params.type);
  const def = resourceTypeDef(type);
  if (!def) throw new FhirError(404, 'not-supported', `resource type ${type.slice(0, 64)} is not served by this registry`, 'INVALID_PARAMETER');
  return def;
}

function idOf(req: Request): string {
  const id = String(req.params.id);
  if (!ID.test(id)) throw badRequest(`${id.slice(0, 80)} is not a FHIR id`, 'id');
  return id;
}

function requireScope(ctx: Ctx, def: ResourceTypeDef, interaction: Interaction, what: string): void {
  if (!hasScope(ctx.principal, def.type, interaction)) throw forbidden(`the token's scopes do not allow ${what} of ${def.type}`, 'ACCESS_DENIED_LEVEL');
}

function readDeps(ctx: Ctx): { principal: Ctx['principal']; policy: Ctx['deps']['policy'] } {
  return { principal: ctx.principal, policy: ctx.deps.policy };
}

function resourceHeaders(ctx: Ctx, type: string, id: string, version: number, lastUpdated: string): Record<string, string> {
  return {
    etag: `W/"${version}"`,
    'last-modified': new Date(lastUpdated).toUTCString(),
    location: `${ctx.fhirBase}/${type}/${id}/_history/${version}`,
  };
}

function preferReturn(req: Request): 'minimal' | 'representation' | 'OperationOutcome' {
  const m = /return=(minimal|representation|OperationOutcome)/.exec(req.header('prefer') ?? '');
  return (m?.[1] as 'minimal' | 'representation' | 'OperationOutcome' | undefined) ?? 'representation';
}

function writeReply(ctx: Ctx, o: WriteOutcome): Reply {
  const headers = resourceHeaders(ctx, o.type, o.id, o.version, o.lastUpdated);
  const prefer = preferReturn(ctx.req);
  if (o.code === 'RESOURCE_DELETED' || prefer === 'OperationOutcome') {
    const code = o.code === 'RESOURCE_DELETED' ? 'RESOURCE_DELETED_OK' : o.code === 'RESOURCE_EXISTS' ? 'RESOURCE_UNCHANGED' : o.code;
    return { status: o.status, headers, body: JSON.stringify(informational(code, describe(o))) };
  }
  if (prefer === 'minimal') return { status: o.status, headers };
  return { status: o.status, headers, body: o.text };
}

async function write(ctx: Ctx, request: Omit<WriteRequest, 'at'>): Promise<Reply> {
  const outcome = await ctx.deps.db.transaction(async (tx) => {
    const [o] = await writeResources(tx, ctx.principal, [{ ...request, at: request.def.type }]);
    const done = o as WriteOutcome;
    ctx.draft.patients.push(...(done.patient ? [done.patient] : []));
    ctx.draft.entities.push({ type: done.type, id: done.id, version: done.version }, ...done.superseded.map((id) => ({ type: 'DocumentReference', id })));
    await ctx.auditIn(tx);
    return done;
  });
  // Organisation kinds feed the sharing policy's snapshot: pick up the change at once on this node.
  if (request.def.type === 'Organization') await ctx.deps.policy.refresh?.();
  return writeReply(ctx, outcome);
}

async function search(ctx: Ctx, params: [string, string][]): Promise<Reply> {
  const def = typeOf(ctx.req);
  requireScope(ctx, def, 's', 'search');
  ctx.draft.resourceType = def.type;
  ctx.draft.query = new URLSearchParams(params).toString();
  // Federated query (src/federation): peers are asked now, in parallel with the local search.
  const federated = federationOf(ctx.deps)?.plan({ db: ctx.deps.db, principal: ctx.principal, def, params });
  const { config } = ctx.deps;
  const strict = /handling=strict/.test(ctx.req.header('prefer') ?? '');
  const r = await searchResources(ctx.deps.db, {
    def,
    params: federated?.localParams ?? params,
    strict,
    principal: ctx.principal,
    policy: ctx.deps.policy,
    fhirBase: ctx.fhirBase,
    maxPageSize: config.maxPageSize,
    defaultPageSize: config.defaultPageSize,
  });
  ctx.draft.patients.push(...r.patients);
  if (r.withheld) ctx.draft.withheld = true;
  ctx.draft.entities.push(...r.returned.map((x) => ({ type: x.type, id: x.id, version: x.version })));
  if (!federated) return { status: 200, body: r.bundle };
  const body = await federated.merge(r.bundle);
  ctx.draft.extraDetail = [...(ctx.draft.extraDetail ?? []), ...(await federated.auditDetail())];
  return { status: 200, body };
}

function formParams(ctx: Ctx): [string, string][] {
  const type = ctx.req.headers['content-type'] ?? '';
  if (!/^application\/x-www-form-urlencoded/i.test(type)) {
    throw new FhirError(415, 'not-supported', 'POST _search takes application/x-www-form-urlencoded parameters', 'MESSAGE_NOT_WELL_FORMED');
  }
  return [...new URLSearchParams(typeof ctx.req.body === 'string' ? ctx.req.body : '')];
}

/** read (no version) and vread: the same checks, the same audit entities, the same headers. */
async function readReply(ctx: Ctx, version: number | undefined): Promise<Reply> {
  const def = typeOf(ctx.req);
  requireScope(ctx, def, 'r', 'read');
  const id = idOf(ctx.req);
  const entity: { type: string; id: string; version?: number } = { type: def.type, id, version };
  ctx.draft.entities.push(entity);
  const r = version === undefined ? await readResource(ctx.deps.db, def, id, readDeps(ctx)) : await vreadResource(ctx.deps.db, def, id, version, readDeps(ctx));
  entity.version = r.version;
  if (r.patient) ctx.draft.patients.push(r.patient);
  return { status: 200, body: r.text, headers: { etag: `W/"${r.version}"`, 'last-modified': new Date(r.lastUpdated).toUTCString() } };
}

const writeAction = (req: Request): 'C' | 'U' | 'D' => (req.method === 'POST' ? 'C' : req.method === 'PUT' ? 'U' : 'D');

/** The FHIR route table. The router, the audit walk test and the CapabilityStatement all read it. */
export const fhirRoutes: RouteDef[] = [
  {
    method: 'get',
    path: '/fhir/metadata',
    subtype: 'capabilities',
    action: 'R',
    auth: false,
    handle: async (ctx) => ({ status: 200, body: JSON.stringify(capabilityStatement(ctx.fhirBase)) }),
  },
  {
    method: 'post',
    path: '/fhir',
    subtype: 'transaction',
    action: 'E',
    auth: true,
    handle: async (ctx) => {
      const body = jsonBody(ctx.req);
      expectResourceType(body, 'Bundle');
      const { config } = ctx.deps;
      const r = await processBundle(body, {
        db: ctx.deps.db,
        principal: ctx.principal,
        policy: ctx.deps.policy,
        fhirBase: ctx.fhirBase,
        maxPageSize: config.maxPageSize,
        defaultPageSize: config.defaultPageSize,
        audit: (q, record) => ctx.deps.audit.write(q, { requestId: ctx.requestId, principal: ctx.principal, clientIp: ctx.req.ip, patients: [], entities: [], ...record }),
      });
      // processBundle wrote the AuditEvents of its entries with their writes: none more here.
      return { status: 200, body: r.text, audited: true };
    },
  },
  {
    method: 'get',
    path: '/fhir/:type',
    subtype: 'search-type',
    action: 'E',
    auth: true,
    handle: (ctx) => search(ctx, queryParams(ctx.req)),
  },
  {
    method: 'post',
    path: '/fhir/:type/_search',
    subtype: 'search-type',
    action: 'E',
    auth: true,
    handle: (ctx) => search(ctx, [...queryParams(ctx.req), ...formParams(ctx)]),
  },
  {
    method: 'post',
    path: '/fhir/:type',
    subtype: 'create',
    action: 'C',
    auth: true,
    handle: async (ctx) => {
      const def = typeOf(ctx.req);
      const body = jsonBody(ctx.req);
      expectResourceType(body, def.type);
      return write(ctx, { method: 'POST', def, resource: body, conditional: ctx.req.header('if-none-exist') ?? undefined });
    },
  },
  {
    method: 'get',
    path: '/fhir/:type/:id',
    subtype: 'read',
    action: 'R',
    auth: true,
    handle: (ctx) => readReply(ctx, undefined),
  },
  {
    method: 'get',
    path: '/fhir/:type/:id/_history/:vid',
    subtype: 'vread',
    action: 'R',
    auth: true,
    handle: (ctx) => {
      const vid = String(ctx.req.params.vid);
      if (!/^\d{1,9}$/.test(vid)) throw badRequest('the version id must be a whole number', 'vid');
      return readReply(ctx, Number(vid));
    },
  },
  {
    method: 'get',
    path: '/fhir/:type/:id/_history',
    subtype: 'history-instance',
    action: 'R',
    auth: true,
    handle: async (ctx) => {
      const def = typeOf(ctx.req);
      requireScope(ctx, def, 'r', 'read');
      const id = idOf(ctx.req);
      ctx.draft.entities.push({ type: def.type, id });
      const count = Math.min(Number(/^\d{1,4}$/.test(String(ctx.req.query._count ?? '')) ? ctx.req.query._count : 100) || 100, 1000);
      const versions = await historyOf(ctx.deps.db, def, id, count, readDeps(ctx));
      const patient = versions.find((v) => v.patient)?.patient;
      if (patient) ctx.draft.patients.push(patient);
      const entries = versions.map((v) => {
        const fullUrl = JSON.stringify(`${ctx.fhirBase}/${def.type}/${id}`);
        const request = `{"method":"${v.deleted ? 'DELETE' : v.version === 1 ? 'POST' : 'PUT'}","url":"${def.type}${v.version === 1 ? '' : `/${id}`}"}`;
        const response = `{"status":"${v.deleted ? '204' : v.version === 1 ? '201' : '200'}","etag":"W/\\"${v.version}\\"","lastModified":"${v.lastUpdated}"}`;
        return `{"fullUrl":${fullUrl},${v.text ? `"resource":${v.text},` : ''}"request":${request},"response":${response}}`;
      });
      const self = JSON.stringify(`${ctx.fhirBase}/${def.type}/${id}/_history`);
      return { status: 200, body: `{"resourceType":"Bundle","type":"history","total":${versions.length},"link":[{"relation":"self","url":${self}}],"entry":[${entries.join(',')}]}` };
    },
  },
  {
    method: 'put',
    path: '/fhir/:type/:id',
    subtype: 'update',
    action: 'U',
    auth: true,
    handle: async (ctx) => {
      const def = typeOf(ctx.req);
      const id = idOf(ctx.req);
      const body = jsonBody(ctx.req);
      expectResourceType(body, def.type);
      ctx.draft.entities.push({ type: def.type, id });
      return write(ctx, { method: 'PUT', def, id, resource: body, ifMatch: ctx.req.header('if-match') ?? undefined });
    },
  },
  {
    method: 'put',
    path: '/fhir/:type',
    subtype: 'update',
    action: writeAction,
    auth: true,
    handle: async (ctx) => {
      const def = typeOf(ctx.req);
      const body = jsonBody(ctx.req);
      expectResourceType(body, def.type);
      const params = queryParams(ctx.req);
      if (params.length === 0) throw badRequest('PUT on a type needs a condition, e.g. ?identifier=system|value');
      return write(ctx, { method: 'PUT', def, resource: body, conditional: new URLSearchParams(params).toString(), ifMatch: ctx.req.header('if-match') ?? undefined });
    },
  },
  {
    method: 'delete',
    path: '/fhir/:type/:id',
    subtype: 'delete',
    action: 'D',
    auth: true,
    handle: async (ctx) => {
      const def = typeOf(ctx.req);
      const id = idOf(ctx.req);
      ctx.draft.entities.push({ type: def.type, id });
      return write(ctx, { method: 'DELETE', def, id, ifMatch: ctx.req.header('if-match') ?? undefined });
    },
  },
];
