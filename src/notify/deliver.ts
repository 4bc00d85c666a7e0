import { randomUUID } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { AppDeps } from '../fhir/pipeline';
import type { Database } from '../store/database';
import { loadEvents, subscriberPrincipal } from './events';
import type { LoadedEvent } from './events';
import { notificationBundle } from './notification-bundle';
import type { NotifyOptions } from './notify-config';
import { publicOnlyLookup, refusedHost } from './public-address';
import type { SubscriptionRow } from './subscription-store';
import type { NotificationType } from './topic';

type DeliverDeps = Pick<AppDeps, 'db' | 'policy' | 'audit' | 'logger' | 'config'>;

const COLUMNS = `id, version, owner_ods, status, topic, filter_type, filter_patient, filter_custodian, endpoint, headers, payload,
  heartbeat_seconds, created, last_updated, events_since_start, last_delivered, failures, next_attempt_at, last_sent_at, error, resource`;

/**
 * Claims subscriptions with work due (a handshake, undelivered events, or a heartbeat) by taking
 * a lease: one node delivers a subscription at a time, so its events leave in order. A node that
 * dies holding a lease loses it after `leaseMs`, and delivery resumes from the last acknowledged
 * event (at-least-once).
 */
export async function claimDue(db: Database, options: NotifyOptions, limit: number): Promise<SubscriptionRow[]> {
  const r = await db.query<SubscriptionRow>(
    `update subscription set lease_until = now() + $1 * interval '1 millisecond'
      where id in (select id from subscription
                    where status in ('requested', 'active') and next_attempt_at <= now()
                      and (lease_until is null or lease_until < now())
                      and (status = 'requested' or events_since_start > last_delivered
                           or (heartbeat_seconds is not null and coalesce(last_sent_at, created) + heartbeat_seconds * interval '1 second' <= now()))
                    order by next_attempt_at limit $2 for update skip locked)
      returning ${COLUMNS}`,
    [options.leaseMs, limit],
  );
  return r.rows;
}

function headersOf(sub: SubscriptionRow): Record<string, string> {
  const out: Record<string, string> = {};
  for (const h of sub.headers) {
    const i = h.indexOf(':');
    out[h.slice(0, i).trim()] = h.slice(i + 1).trim();
  }
  return { ...out, 'content-type': 'application/fhir+json', accept: 'application/fhir+json' };
}

/** Kept-alive connections to endpoints: those for public addresses only resolve through the check. */
const agents = {
  public: { http: new http.Agent({ keepAlive: true, lookup: publicOnlyLookup }), https: new https.Agent({ keepAlive: true, lookup: publicOnlyLookup }) },
  any: { http: new http.Agent({ keepAlive: true }), https: new https.Agent({ keepAlive: true }) },
};

/**
 * POSTs one notification to a rest-hook endpoint: undefined when it answered 2xx, else why not.
 * Redirects are not followed (the answer is the endpoint's own), and unless private addresses are
 * allowed the connection goes to public addresses only, checked on the address the name resolved
 * to at connection time (public-address.ts).
 */
export function postNotification(endpoint: string, headers: Record<string, string>, body: string, options: Pick<NotifyOptions, 'timeoutMs' | 'allowPrivate'>): Promise<string | undefined> {
  return new Promise((resolve) => {
    let url: URL;
    try {
      url = new URL(endpoint);
    } catch {
      resolve('the endpoint is not a URL');
      return;
    }
    const refused = options.allowPrivate ? undefined : refusedHost(url.hostname);
    if (refused) {
      resolve(`the endpoint is not at a public address (${refused})`);
      return;
    }
    let settled = false;
    const settle = (reason: string | undefined): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(reason);
    };
    const kind = url.protocol === 'https:' ? 'https' : 'http';
    const agent = agents[options.allowPrivate ? 'any' : 'public'][kind];
    let req: http.ClientRequest;
    try {
      req = (kind === 'https' ? https : http).request(url, { method: 'POST', agent, headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) } }, (res) => {
        res.resume();
        const status = res.statusCode ?? 0;
        res.on('end', () => settle(status >= 200 && status < 300 ? undefined : `the endpoint answered HTTP ${status}`));
        res.on('error', () => settle('the answer of the endpoint was cut short'));
      });
    } catch {
      // node:http refuses a header it cannot send (a Subscription stored before values were checked).
      resolve('the request to the endpoint could not be formed (a header of the Subscription is invalid)');
      return;
    }
    const timer = setTimeout(() => {
      settle(`the endpoint did not answer within ${options.timeoutMs} ms`);
      req.destroy();
    }, options.timeoutMs);
    req.on('error', (e: NodeJS.ErrnoException) => settle(e.code === 'ENOTPUBLIC' ? 'the endpoint resolves to an address that is not public' : 'the endpoint could not be reached'));
    req.end(body);
  });
}

function post(sub: SubscriptionRow, body: string, options: NotifyOptions): Promise<string | undefined> {
  return postNotification(sub.endpoint, headersOf(sub), body, options);
}

export function backoff(failures: number, options: NotifyOptions): number {
  const base = Math.min(options.backoffMaxMs, options.backoffMs * 2 ** Math.max(0, failures - 1));
  return Math.round(base * (0.8 + Math.random() * 0.4));
}

async function failed(db: Database, sub: SubscriptionRow, reason: string, options: NotifyOptions): Promise<void> {
  const failures = sub.failures + 1;
  const toError = failures >= options.maxFailures;
  await db.query(
    `update subscription set failures = $3, next_attempt_at = now() + $4 * interval '1 millisecond', lease_until = null,
        status = case when $5::boolean then 'error' else status end, error = $6
      where id = $1 and version = $2`,
    [sub.id, sub.version, failures, backoff(failures, options), toError, `${reason} (${failures} consecutive failures)`],
  );
}

async function succeeded(db: Database, sub: SubscriptionRow, deliveredThrough: number, activate: boolean): Promise<void> {
  await db.query(
    `update subscription set failures = 0, error = null, last_sent_at = now(), next_attempt_at = now(), lease_until = null,
        last_delivered = greatest(last_delivered, $3), status = case when $4::boolean and status = 'requested' then 'active' else status end
      where id = $1 and version = $2`,
    [sub.id, sub.version, deliveredThrough, activate],
  );
}

async function auditDisclosure(deps: DeliverDeps, sub: SubscriptionRow, events: LoadedEvent[]): Promise<void> {
  await deps.audit.write(deps.db, {
    requestId: randomUUID(),
    subtype: 'operation',
    operation: 'subscription-notification',
    action: 'E',
    outcome: '0',
    principal: subscriberPrincipal(sub),
    resourceType: 'Subscription',
    patients: [...new Set(events.map((e) => e.patient).filter((p): p is string => Boolean(p)))],
    entities: [{ type: 'Subscription', id: sub.id }, ...events.map((e) => ({ type: e.type, id: e.id, version: e.version }))],
    extraDetail: [{ type: 'notification-events', value: `${events[0]?.eventNumber}-${events[events.length - 1]?.eventNumber}` }],
  });
}

/**
 * One delivery attempt for a claimed subscription: the handshake, the next batch of events, or a
 * heartbeat. Events withheld by consent or sharing rules at this moment are not sent (their
 * numbers are passed over; $events withholds them too). The AuditEvent of a disclosure is written
 * before it leaves.
 */
export async function deliverOne(deps: DeliverDeps, sub: SubscriptionRow, options: NotifyOptions): Promise<number> {
  const fhirBase = `${deps.config.baseUrl}/fhir`;
  const send = async (type: NotificationType, events: LoadedEvent[], through: number): Promise<boolean> => {
    const reason = await post(sub, notificationBundle(fhirBase, sub, type, events, sub.payload === 'full-resource'), options);
    if (reason) {
      deps.logger.warn({ subscription: sub.id, type, failures: sub.failures + 1 }, 'notification not delivered');
      await failed(deps.db, sub, reason, options);
      return false;
    }
    await succeeded(deps.db, sub, through, type === 'handshake');
    return true;
  };
  if (sub.status === 'requested') {
    await send('handshake', [], sub.last_delivered);
    return 0;
  }
  if (sub.events_since_start > sub.last_delivered) {
    const loaded = await loadEvents(deps.db, deps.policy, sub, { since: sub.last_delivered + 1, limit: options.batch, withResource: sub.payload === 'full-resource' });
    const through = loaded[loaded.length - 1]?.eventNumber ?? sub.last_delivered;
    const visible = loaded.filter((e) => e.visible);
    if (visible.length === 0) {
      await succeededSilently(deps.db, sub, through);
      return 0;
    }
    await auditDisclosure(deps, sub, visible);
    return (await send('event-notification', visible, through)) ? visible.length : 0;
  }
  await send('heartbeat', [], sub.last_delivered);
  return 0;
}

/** Every event of the batch is withheld: nothing leaves, and delivery moves past them. */
async function succeededSilently(db: Database, sub: SubscriptionRow, through: number): Promise<void> {
  await db.query('update subscription set last_delivered = greatest(last_delivered, $2), lease_until = null where id = $1', [sub.id, through]);
}

export async function releaseLeases(db: Database, ids: string[]): Promise<void> {
  if (ids.length > 0) await db.query('update subscription set lease_until = null where id = any($1::text[])', [ids]);
}
