import type { PointerPolicy } from '../access/policy';
import type { Principal } from '../access/principal';
import type { Queryable } from '../store/database';
import { SqlBuilder } from '../store/sql-builder';
import type { OutgoingEvent } from './notification-bundle';
import type { SubscriptionRow } from './subscription-store';
import type { PointerChange } from './topic';

/** The subscriber's organisation as a principal: notifications obey exactly the rules of its searches. */
export function subscriberPrincipal(sub: Pick<SubscriptionRow, 'id' | 'owner_ods'>): Principal {
  return {
    subject: `Subscription/${sub.id}`,
    issuer: 'urn:locus:subscription',
    organization: sub.owner_ods,
    role: 'peer',
    scopes: [],
    purposeOfUse: 'TREAT',
    clientId: 'locus-notify',
  };
}

export interface LoadedEvent extends OutgoingEvent {
  patient: string | null;
  /** Visible to the subscriber now, by the same SQL policy as its searches. */
  visible: boolean;
}

/**
 * A subscription's events in [since, until], in order, each re-checked against the sharing
 * policy at this moment on the exact pointer version it announces (resource_version carries the
 * patient, custodian, categories and labels the policy reads). One statement.
 */
export async function loadEvents(
  q: Queryable,
  policy: PointerPolicy,
  sub: SubscriptionRow,
  range: { since: number; until?: number; limit: number; withResource: boolean },
  now: Date = new Date(),
): Promise<LoadedEvent[]> {
  const b = new SqlBuilder();
  const principal = subscriberPrincipal(sub);
  const subId = b.param(sub.id);
  const since = b.param(range.since);
  const until = range.until === undefined ? '' : ` and e.event_number <= ${b.param(range.until)}`;
  const visIs = policy.visible(principal, 'v', 'ImagingStudy', b, now);
  const visDr = policy.visible(principal, 'v', 'DocumentReference', b, now);
  const r = await q.query<{ event_number: number; recorded: Date; resource_type: string; resource_id: string; version: number; change: PointerChange; patient_nhs: string | null; visible: boolean | null; resource: string | null }>(
    `select e.event_number, e.recorded, e.resource_type, e.resource_id, e.version, e.change, v.patient_nhs,
            (v.id is not null and (case when e.resource_type = 'ImagingStudy' then ${visIs} else ${visDr} end)) as visible,
            ${range.withResource ? 'v.resource' : 'null::text'} as resource
       from notify_event e
       left join resource_version v on v.resource_type = e.resource_type and v.id = e.resource_id and v.version = e.version
      where e.subscription_id = ${subId} and e.event_number >= ${since}${until}
      order by e.event_number limit ${Math.max(1, Math.floor(range.limit))}`,
    b.params,
  );
  return r.rows.map((row) => ({
    eventNumber: Number(row.event_number),
    recorded: row.recorded,
    type: row.resource_type,
    id: row.resource_id,
    version: row.version,
    change: row.change,
    patient: row.patient_nhs,
    visible: row.visible === true,
    // A withheld event never carries its resource, whatever the payload asked for.
    resource: row.visible === true ? row.resource : null,
  }));
}
