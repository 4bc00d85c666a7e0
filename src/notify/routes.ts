import { randomUUID } from 'node:crypto';
import { hasScope } from '../access/principal';
import type { Interaction } from '../access/principal';
import { expectResourceType, jsonBody, queryParams } from '../fhir/body';
import { FhirError, badRequest, forbidden, informational, notFound } from '../fhir/errors';
import type { Ctx, Reply, RouteDef } from '../fhir/pipeline';
import type { Queryable } from '../store/database';
import { loadEvents } from './events';
import { notificationBundle, statusParameters } from './notification-bundle';
import type { NotifyOptions } from './notify-config';
import { parseSubscription } from './subscription';
import type { SubscriptionRow } from './subscription-store';
import { deleteSubscription, findSubscription, insertSubscription, subscriptionText, updateSubscription } from './subscription-store';
import { searchSubscriptions } from './subscription-search';

const ID = /^[A-Za-z0-9\-.]{1,64}$/;
const MAX_EVENTS = 1000;

function requireScope(ctx: Ctx, interaction: Interaction, what: string): void {
  if (!hasScope(ctx.principal, 'Subscription', interaction)) throw forbidden(`the token's scopes do not allow ${what} of Subscription`, 'ACCESS_DENIED_LEVEL');
}

/** A subscription is its owner's alone: anyone else is told it does not exist. */
async function ownSubscription(ctx: Ctx, forUpdate = false, q: Queryable = ctx.deps.db): Promise<SubscriptionRow> {
  const id = String(ctx.req.params.id);
  if (!ID.test(id)) throw badRequest(`${id.slice(0, 80)} is not a FHIR id`, 'id');
  ctx.draft.entities.push({ type: 'Subscription', id });
  const row = await findSubscription(q, id, forUpdate);
  if (!row || row.owner_ods !== ctx.principal.organization) throw notFound(`Subscription/${id} is not known to this registry`);
  return row;
}

function resourceReply(ctx: Ctx, row: SubscriptionRow, status: number): Reply {
  return {
    status,
    body: subscriptionText(row),
    headers: { etag: `W/"${row.version}"`, location: `${ctx.fhirBase}/Subscription/${row.id}/_history/${row.version}`, 'last-modified': new Date(row.last_updated).toUTCString() },
  };
}

function eventNumberParam(ctx: Ctx, name: string): number | undefined {
  const v = ctx.req.query[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !/^\d{1,15}$/.test(v)) throw badRequest(`${name} must be an event number`, name);
  return Number(v);
}

/** Subscription CRUD and the backport's $status and $events operations (R4: Subscription/[id]/$...). */
export function subscriptionRoutes(options: NotifyOptions): RouteDef[] {
  return [
    {
      method: 'post',
      path: '/fhir/Subscription',
      subtype: 'create',
      action: 'C',
      auth: true,
      handle: async (ctx) => {
        requireScope(ctx, 'c', 'create');
        const body = jsonBody(ctx.req);
        expectResourceType(body, 'Subscription');
        const spec = parseSubscription(body, options);
        const row = await ctx.deps.db.transaction(async (tx) => {
          const created = await insertSubscription(tx, randomUUID(), ctx.principal.organization, spec, new Date());
          ctx.draft.entities.push({ type: 'Subscription', id: created.id, version: 1 });
          await ctx.auditIn(tx);
          return created;
        });
        return resourceReply(ctx, row, 201);
      },
    },
    {
      method: 'get',
      path: '/fhir/Subscription',
      subtype: 'search-type',
      action: 'E',
      auth: true,
      handle: async (ctx) => {
        requireScope(ctx, 's', 'search');
        ctx.draft.resourceType = 'Subscription';
        const strict = /handling=strict/.test(ctx.req.header('prefer') ?? '');
        const params = queryParams(ctx.req);
        ctx.draft.query = new URLSearchParams(params).toString();
        const { bundle, rows } = await searchSubscriptions(ctx.deps.db, { owner: ctx.principal.organization, params, strict, fhirBase: ctx.fhirBase });
        ctx.draft.entities.push(...rows.map((r) => ({ type: 'Subscription', id: r.id, version: r.version })));
        return { status: 200, body: bundle };
      },
    },
    {
      method: 'get',
      path: '/fhir/Subscription/:id/$status',
      subtype: 'operation',
      operation: '$status',
      action: 'E',
      auth: true,
      handle: async (ctx) => {
        requireScope(ctx, 'r', 'read');
        const row = await ownSubscription(ctx);
        const status = statusParameters(ctx.fhirBase, row, 'query-status', []);
        // Backport $status answers a searchset Bundle of status Parameters.
        const entry = { fullUrl: `urn:uuid:${randomUUID()}`, resource: status, search: { mode: 'match' } };
        return { status: 200, body: JSON.stringify({ resourceType: 'Bundle', id: randomUUID(), type: 'searchset', total: 1, entry: [entry] }) };
      },
    },
    {
      method: 'get',
      path: '/fhir/Subscription/:id/$events',
      subtype: 'operation',
      operation: '$events',
      action: 'E',
      auth: true,
      handle: async (ctx) => {
        requireScope(ctx, 'r', 'read');
        const row = await ownSubscription(ctx);
        const since = eventNumberParam(ctx, 'eventsSinceNumber') ?? Math.max(1, row.events_since_start - 99);
        const until = eventNumberParam(ctx, 'eventsUntilNumber') ?? row.events_since_start;
        if (until < since) throw badRequest('eventsUntilNumber is before eventsSinceNumber', 'eventsUntilNumber');
        const content = ctx.req.query.content ?? row.payload;
        if (content !== 'id-only' && content !== 'full-resource' && content !== 'empty') throw badRequest('content is empty, id-only or full-resource', 'content');
        ctx.draft.query = new URLSearchParams({ eventsSinceNumber: String(since), eventsUntilNumber: String(until) }).toString();
        const loaded = await loadEvents(ctx.deps.db, ctx.deps.policy, row, { since, until, limit: MAX_EVENTS, withResource: content === 'full-resource' });
        const visible = loaded.filter((e) => e.visible);
        ctx.draft.patients.push(...new Set(visible.map((e) => e.patient).filter((p): p is string => Boolean(p))));
        ctx.draft.entities.push(...visible.map((e) => ({ type: e.type, id: e.id, version: e.version })));
        return { status: 200, body: notificationBundle(ctx.fhirBase, row, 'query-event', content === 'empty' ? [] : visible, content === 'full-resource') };
      },
    },
    {
      method: 'get',
      path: '/fhir/Subscription/:id',
      subtype: 'read',
      action: 'R',
      auth: true,
      handle: async (ctx) => {
        requireScope(ctx, 'r', 'read');
        return resourceReply(ctx, await ownSubscription(ctx), 200);
      },
    },
    {
      method: 'put',
      path: '/fhir/Subscription/:id',
      subtype: 'update',
      action: 'U',
      auth: true,
      handle: async (ctx) => {
        requireScope(ctx, 'u', 'update');
        const body = jsonBody(ctx.req);
        expectResourceType(body, 'Subscription');
        if (body.id !== undefined && body.id !== ctx.req.params.id) throw badRequest('the resource id does not match the URL id', 'Subscription.id');
        const spec = parseSubscription(body, options);
        const row = await ctx.deps.db.transaction(async (tx) => {
          const current = await ownSubscription(ctx, true, tx);
          const ifMatch = ctx.req.header('if-match');
          if (ifMatch && ifMatch.replace(/^W\//, '').replace(/"/g, '') !== String(current.version)) {
            throw new FhirError(412, 'conflict', `If-Match ${ifMatch} does not match the current version W/"${current.version}"`, 'PRECONDITION_FAILED');
          }
          const updated = (await updateSubscription(tx, current.id, spec, new Date())) as SubscriptionRow;
          await ctx.auditIn(tx);
          return updated;
        });
        return resourceReply(ctx, row, 200);
      },
    },
    {
      method: 'delete',
      path: '/fhir/Subscription/:id',
      subtype: 'delete',
      action: 'D',
      auth: true,
      handle: async (ctx) => {
        requireScope(ctx, 'd', 'delete');
        await ctx.deps.db.transaction(async (tx) => {
          const row = await ownSubscription(ctx, true, tx);
          await deleteSubscription(tx, row.id);
          await ctx.auditIn(tx);
        });
        return { status: 200, body: JSON.stringify(informational('RESOURCE_DELETED_OK', 'the Subscription was deleted; no further notifications will be sent')) };
      },
    },
  ];
}
