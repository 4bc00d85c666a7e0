/**
 * Facts of the FHIR Subscriptions R5 Backport IG (STU 1.1) as Locus uses them in R4: the topic is
 * a canonical URL in Subscription.criteria, the rest are extensions on the R4 Subscription, and
 * a notification is a `history` Bundle whose first entry is a Parameters (SubscriptionStatus).
 */
const BACKPORT = 'http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition';

export const BACKPORT_SUBSCRIPTION_PROFILE = `${BACKPORT}/backport-subscription`;
export const BACKPORT_STATUS_PROFILE = `${BACKPORT}/backport-subscription-status-r4`;
export const BACKPORT_NOTIFICATION_PROFILE = `${BACKPORT}/backport-subscription-notification-r4`;
export const EXT_FILTER_CRITERIA = `${BACKPORT}/backport-filter-criteria`;
export const EXT_PAYLOAD_CONTENT = `${BACKPORT}/backport-payload-content`;
export const EXT_HEARTBEAT_PERIOD = `${BACKPORT}/backport-heartbeat-period`;
export const EXT_TIMEOUT = `${BACKPORT}/backport-timeout`;
export const EXT_MAX_COUNT = `${BACKPORT}/backport-max-count`;

/** The one topic Locus publishes (a SubscriptionTopic-equivalent; DSUBm "document pointer changed"). */
export const POINTER_TOPIC = 'https://locus.nhs.example/fhir/SubscriptionTopic/imaging-pointer-changed';

/** What a subscriber learns about an event (the topic's triggers). */
export type PointerChange = 'create' | 'update' | 'supersede' | 'delete';

export type NotificationType = 'handshake' | 'heartbeat' | 'event-notification' | 'query-status' | 'query-event';
export type SubscriptionStatusCode = 'requested' | 'active' | 'error' | 'off';
export type PayloadContent = 'id-only' | 'full-resource';

export const POINTER_TYPES = ['ImagingStudy', 'DocumentReference'] as const;
export type PointerType = (typeof POINTER_TYPES)[number];
