import type { Queryable } from '../store/database';
import type { SubscriptionSpec } from './subscription';
import type { PayloadContent, SubscriptionStatusCode } from './topic';

export interface SubscriptionRow {
  id: string;
  version: number;
  owner_ods: string;
  status: SubscriptionStatusCode;
  topic: string;
  filter_type: string | null;
  filter_patient: string | null;
  filter_custodian: string | null;
  endpoint: string;
  headers: string[];
  payload: PayloadContent;
  heartbeat_seconds: number | null;
  created: Date;
  last_updated: Date;
  events_since_start: number;
  last_delivered: number;
  failures: number;
  next_attempt_at: Date;
  last_sent_at: Date | null;
  error: string | null;
  resource: string;
}

export const SUBSCRIPTION_COLUMNS = `id, version, owner_ods, status, topic, filter_type, filter_patient, filter_custodian, endpoint, headers, payload,
  heartbeat_seconds, created, last_updated, events_since_start, last_delivered,
  failures, next_attempt_at, last_sent_at, error, resource`;

export async function insertSubscription(q: Queryable, id: string, owner: string, spec: SubscriptionSpec, now: Date): Promise<SubscriptionRow> {
  const r = await q.query<SubscriptionRow>(
    `insert into subscription (id, version, owner_ods, status, topic, filter_type, filter_patient, filter_custodian, endpoint, headers, payload,
        heartbeat_seconds, created, last_updated, next_attempt_at, resource)
     values ($1, 1, $2, $3, $4, $5, $6, $7, $8, $9::text[], $10, $11, $12, $12, $12, $13) returning ${SUBSCRIPTION_COLUMNS}`,
    [id, owner, spec.status, spec.topic, spec.filterType ?? null, spec.filterPatient ?? null, spec.filterCustodian ?? null, spec.endpoint, spec.headers, spec.payload, spec.heartbeatSeconds ?? null, now, JSON.stringify(spec.resource)],
  );
  return r.rows[0] as SubscriptionRow;
}

/** An update restarts the handshake (a changed endpoint must prove itself) and clears the error; events already numbered stay. */
export async function updateSubscription(q: Queryable, id: string, spec: SubscriptionSpec, now: Date): Promise<SubscriptionRow | undefined> {
  const r = await q.query<SubscriptionRow>(
    `update subscription set version = version + 1, status = $2, filter_type = $3, filter_patient = $4, filter_custodian = $5, endpoint = $6,
        headers = $7::text[], payload = $8, heartbeat_seconds = $9, last_updated = $10, failures = 0, next_attempt_at = $10, error = null,
        lease_until = null, resource = $11
      where id = $1 returning ${SUBSCRIPTION_COLUMNS}`,
    [id, spec.status, spec.filterType ?? null, spec.filterPatient ?? null, spec.filterCustodian ?? null, spec.endpoint, spec.headers, spec.payload, spec.heartbeatSeconds ?? null, now, JSON.stringify(spec.resource)],
  );
  return r.rows[0];
}

export async function findSubscription(q: Queryable, id: string, forUpdate = false): Promise<SubscriptionRow | undefined> {
  const r = await q.query<SubscriptionRow>(`select ${SUBSCRIPTION_COLUMNS} from subscription where id = $1${forUpdate ? ' for update' : ''}`, [id]);
  return r.rows[0];
}

export async function deleteSubscription(q: Queryable, id: string): Promise<void> {
  await q.query('delete from subscription where id = $1', [id]);
}

/** The R4 resource as the server presents it: the client's content, plus the status the server manages. */
export function subscriptionText(row: SubscriptionRow): string {
  const resource = JSON.parse(row.resource) as Record<string, unknown>;
  const { resourceType: _t, meta, ...rest } = resource;
  return JSON.stringify({
    resourceType: 'Subscription',
    id: row.id,
    meta: { ...(meta as Record<string, unknown>), versionId: String(row.version), lastUpdated: new Date(row.last_updated).toISOString() },
    ...rest,
    status: row.status,
    ...(row.error ? { error: row.error } : {}),
  });
}
