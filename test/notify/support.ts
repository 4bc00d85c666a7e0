import type { NetworkPolicy } from '../../src/access/network-policy';
import { EXT_FILTER_CRITERIA, EXT_HEARTBEAT_PERIOD, EXT_PAYLOAD_CONTENT, POINTER_TOPIC } from '../../src/notify/topic';
import { NHS, ODS, registerNetwork } from '../helpers/fixtures';
import type { TestServer } from '../helpers/server';

/** The sharing policy keeps a snapshot of organisations and agreements: reload it after direct inserts. */
export async function refreshPolicy(s: TestServer): Promise<void> {
  await (s.locus.deps.policy as Partial<NetworkPolicy>).refresh?.();
}

/** Settings of the notification worker for loopback tests (read by extensions() from process.env). */
export function notifyTestEnv(): void {
  Object.assign(process.env, {
    LOCUS_NOTIFY_ALLOW_HTTP: 'true',
    // the receiver listens on loopback
    LOCUS_NOTIFY_ALLOW_PRIVATE: 'true',
    LOCUS_NOTIFY_POLL_MS: '20',
    LOCUS_NOTIFY_BACKOFF_MS: '40',
    LOCUS_NOTIFY_BACKOFF_MAX_MS: '200',
    LOCUS_NOTIFY_MAX_FAILURES: '3',
    LOCUS_NOTIFY_LEASE_MS: '1000',
    LOCUS_NOTIFY_TIMEOUT_MS: '2000',
  });
}

export interface SubscriptionOptions {
  endpoint: string;
  patient?: string;
  custodian?: string;
  type?: string;
  payload?: 'id-only' | 'full-resource';
  heartbeat?: number;
  status?: string;
}

export function aSubscription(o: SubscriptionOptions): Record<string, unknown> {
  const filters = [
    ...(o.patient ? [`${o.type ? `${o.type}?` : ''}patient.identifier=${NHS}|${o.patient}`] : []),
    ...(o.custodian ? [`custodian=${ODS}|${o.custodian}`] : []),
  ];
  return {
    resourceType: 'Subscription',
    status: o.status ?? 'requested',
    reason: 'shared care record feed',
    criteria: POINTER_TOPIC,
    _criteria: { extension: filters.map((f) => ({ url: EXT_FILTER_CRITERIA, valueString: f })) },
    channel: {
      ...(o.heartbeat ? { extension: [{ url: EXT_HEARTBEAT_PERIOD, valueUnsignedInt: o.heartbeat }] } : {}),
      type: 'rest-hook',
      endpoint: o.endpoint,
      payload: 'application/fhir+json',
      _payload: { extension: [{ url: EXT_PAYLOAD_CONTENT, valueCode: o.payload ?? 'id-only' }] },
      header: ['X-Receiver-Key: test-key'],
    },
  };
}

/**
 * Two trusts and a shared care record (SCR01). RRK shares with SCR01 under an agreement; RXK has
 * none, so RXK's pointers must never reach SCR01.
 */
export async function sharedCareNetwork(s: TestServer): Promise<Record<string, { orgId: string; endpointId: string }>> {
  const net = await registerNetwork(s, [{ ods: 'RRK' }, { ods: 'RXK' }, { ods: 'SCR01', kind: 'shared-care-record' }]);
  await s.db.query(
    `insert into sharing_agreement (id, provider_ods, recipient_ods, categories, period_start, period_end, description)
     values ('rrk-scr', 'RRK', 'SCR01', '{}', now() - interval '1 day', null, 'RRK shares with the shared care record')`,
  );
  await refreshPolicy(s);
  return net;
}

export const subscriberToken = (s: TestServer, org = 'SCR01'): Promise<string> => s.tokenFor(org, 'system', { scope: 'system/Subscription.cruds' });
