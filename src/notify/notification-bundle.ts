import { randomUUID } from 'node:crypto';
import type { SubscriptionRow } from './subscription-store';
import type { NotificationType, PointerChange } from './topic';
import { BACKPORT_NOTIFICATION_PROFILE, BACKPORT_STATUS_PROFILE } from './topic';

/** One event as it leaves Locus: numbered per subscription; `resource` only for full-resource payloads. */
export interface OutgoingEvent {
  eventNumber: number;
  recorded: Date;
  type: string;
  id: string;
  version: number;
  change: PointerChange;
  resource?: string | null;
}

/**
 * The R4 backport SubscriptionStatus as a Parameters resource (backport-subscription-status-r4):
 * subscription, topic, status, type, events-since-subscription-start, and one notification-event
 * part per event with its event-number (a string in R4), timestamp and focus.
 */
export function statusParameters(fhirBase: string, sub: SubscriptionRow, type: NotificationType, events: readonly OutgoingEvent[], status = sub.status): Record<string, unknown> {
  return {
    resourceType: 'Parameters',
    meta: { profile: [BACKPORT_STATUS_PROFILE] },
    parameter: [
      { name: 'subscription', valueReference: { reference: `${fhirBase}/Subscription/${sub.id}` } },
      { name: 'topic', valueCanonical: sub.topic },
      { name: 'status', valueCode: status },
      { name: 'type', valueCode: type },
      { name: 'events-since-subscription-start', valueString: String(sub.events_since_start) },
      ...events.map((e) => ({
        name: 'notification-event',
        part: [
          { name: 'event-number', valueString: String(e.eventNumber) },
          { name: 'timestamp', valueInstant: new Date(e.recorded).toISOString() },
          { name: 'focus', valueReference: { reference: `${fhirBase}/${e.type}/${e.id}/_history/${e.version}` } },
        ],
      })),
      ...(sub.error && status === 'error' ? [{ name: 'error', valueCodeableConcept: { text: sub.error } }] : []),
    ],
  };
}

function eventEntry(fhirBase: string, e: OutgoingEvent, withResource: boolean): string {
  const fullUrl = JSON.stringify(`${fhirBase}/${e.type}/${e.id}`);
  const method = e.change === 'delete' ? 'DELETE' : e.change === 'create' ? 'POST' : 'PUT';
  const url = JSON.stringify(e.change === 'create' ? e.type : `${e.type}/${e.id}`);
  const status = e.change === 'delete' ? '204' : e.change === 'create' ? '201' : '200';
  // Stored resource text is spliced, never re-serialised (DESIGN: text on the read path).
  const resource = withResource && e.resource ? `"resource":${e.resource},` : '';
  return `{"fullUrl":${fullUrl},${resource}"request":{"method":"${method}","url":${url}},"response":{"status":"${status}","etag":"W/\\"${e.version}\\""}}`;
}

/**
 * A notification (or $events answer): a `history` Bundle whose first entry is the status
 * Parameters (backport-subscription-notification-r4), then one entry per event (history Bundles
 * need entry.request: bdl-3/bdl-4).
 */
export function notificationBundle(fhirBase: string, sub: SubscriptionRow, type: NotificationType, events: readonly OutgoingEvent[], withResources: boolean): string {
  const status = statusParameters(fhirBase, sub, type, events);
  const statusEntry = JSON.stringify({
    fullUrl: `urn:uuid:${randomUUID()}`,
    resource: status,
    request: { method: 'GET', url: `${fhirBase}/Subscription/${sub.id}/$status` },
    response: { status: '200' },
  });
  const entries = [statusEntry, ...events.map((e) => eventEntry(fhirBase, e, withResources))];
  const meta = JSON.stringify({ profile: [BACKPORT_NOTIFICATION_PROFILE] });
  return `{"resourceType":"Bundle","id":"${randomUUID()}","meta":${meta},"type":"history","timestamp":"${new Date().toISOString()}","entry":[${entries.join(',')}]}`;
}
