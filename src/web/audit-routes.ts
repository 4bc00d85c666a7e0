import { parseAuditQuery } from '../audit/audit-query';
import { auditBundle, findAuditPage, readAuditEvent } from '../audit/audit-search';
import { queryParams } from '../fhir/body';
import { FhirError, badRequest, notFound } from '../fhir/errors';
import type { Ctx, Reply, RouteDef } from '../fhir/pipeline';
import { requireAuditor } from './audit-access';

async function searchAudit(ctx: Ctx, params: [string, string][]): Promise<Reply> {
  ctx.draft.resourceType = 'AuditEvent';
  ctx.draft.query = new URLSearchParams(params).toString();
  requireAuditor(ctx.principal, 's');
  const { config } = ctx.deps;
  const query = parseAuditQuery(params, { defaultPageSize: config.defaultPageSize, maxPageSize: config.maxPageSize, accept: ctx.req.header('accept') });
  ctx.draft.patients.push(...query.patients);
  if (query.format !== 'json') {
    // Exports stream (audit-export.ts) and are served on GET only.
    throw new FhirError(406, 'not-supported', 'CSV and NDJSON exports are served by GET /fhir/AuditEvent', 'INVALID_PARAMETER', '_format');
  }
  const page = await findAuditPage(ctx.deps.db, query, true);
  ctx.draft.entities.push(...page.rows.map((r) => ({ type: 'AuditEvent', id: r.id })));
  return { status: 200, body: auditBundle(ctx.fhirBase, query, page) };
}

function formParams(ctx: Ctx): [string, string][] {
  if (!/^application\/x-www-form-urlencoded/i.test(ctx.req.headers['content-type'] ?? '')) {
    throw new FhirError(415, 'not-supported', 'POST _search takes application/x-www-form-urlencoded parameters', 'MESSAGE_NOT_WELL_FORMED');
  }
  return [...new URLSearchParams(typeof ctx.req.body === 'string' ? ctx.req.body : '')];
}

/** AuditEvent review (issue 3): auditor role only, and every review is itself audited by the pipeline. */
export const auditRoutes: RouteDef[] = [
  {
    method: 'get',
    path: '/fhir/AuditEvent',
    subtype: 'search-type',
    action: 'E',
    auth: true,
    handle: (ctx) => searchAudit(ctx, queryParams(ctx.req)),
  },
  {
    method: 'post',
    path: '/fhir/AuditEvent/_search',
    subtype: 'search-type',
    action: 'E',
    auth: true,
    handle: (ctx) => searchAudit(ctx, [...queryParams(ctx.req), ...formParams(ctx)]),
  },
  {
    method: 'get',
    path: '/fhir/AuditEvent/:id',
    subtype: 'read',
    action: 'R',
    auth: true,
    handle: async (ctx) => {
      const id = String(ctx.req.params.id);
      ctx.draft.resourceType = 'AuditEvent';
      if (!/^[A-Za-z0-9\-.]{1,64}$/.test(id)) throw badRequest(`${id.slice(0, 80)} is not a FHIR id`, 'id');
      ctx.draft.entities.push({ type: 'AuditEvent', id });
      requireAuditor(ctx.principal, 'r');
      const found = await readAuditEvent(ctx.deps.db, id);
      if (!found) throw notFound(`AuditEvent/${id} is not known`);
      ctx.draft.patients.push(...found.patients);
      return { status: 200, body: found.resource };
    },
  },
];
