import { z } from 'zod';
import { unprocessable } from '../fhir/errors';
import { ODS_SYSTEM } from '../registry/codes';
import { NHS_NUMBER_SYSTEM, isValidNhsNumber } from '../registry/nhs-number';
import { refusedHost } from './public-address';
import type { PayloadContent, PointerType, SubscriptionStatusCode } from './topic';
import { BACKPORT_SUBSCRIPTION_PROFILE, EXT_FILTER_CRITERIA, EXT_HEARTBEAT_PERIOD, EXT_PAYLOAD_CONTENT, POINTER_TOPIC, POINTER_TYPES } from './topic';

/** A Subscription as Locus runs it: the R4 resource's backport extensions, read once at write time. */
export interface SubscriptionSpec {
  status: SubscriptionStatusCode;
  topic: string;
  filterType?: PointerType;
  filterPatient?: string;
  filterCustodian?: string;
  endpoint: string;
  headers: string[];
  payload: PayloadContent;
  heartbeatSeconds?: number;
  /** The resource as the client sent it, minus server-managed parts. */
  resource: Record<string, unknown>;
}

const extensionSchema = z.object({ url: z.string() }).loose();
const withExtensions = z.object({ extension: z.array(extensionSchema).max(20).optional() }).loose();

const subscriptionSchema = z
  .object({
    resourceType: z.literal('Subscription'),
    id: z.string().optional(),
    meta: z.object({}).loose().optional(),
    status: z.enum(['requested', 'active', 'error', 'off']),
    reason: z.string().max(1024).optional(),
    end: z.string().optional(),
    criteria: z.string().max(1024),
    _criteria: withExtensions.optional(),
    contact: z.array(z.object({}).loose()).max(10).optional(),
    error: z.string().optional(),
    extension: z.array(extensionSchema).max(20).optional(),
    channel: z
      .object({
        type: z.string(),
        endpoint: z.string().max(2048).optional(),
        payload: z.string().optional(),
        _payload: withExtensions.optional(),
        header: z.array(z.string().max(4096)).max(10).optional(),
        extension: z.array(extensionSchema).max(20).optional(),
      })
      .loose(),
  })
  .loose();

const extValue = (exts: { url: string }[] | undefined, url: string, key: string): unknown =>
  (exts?.find((e) => e.url === url) as Record<string, unknown> | undefined)?.[key];

/** Backport filter criteria (`[Type?]param=value`), ANDed; Locus filters by patient and by custodian. */
function applyFilter(spec: Partial<SubscriptionSpec>, raw: string, at: string): void {
  const q = raw.indexOf('?');
  const type = q >= 0 ? raw.slice(0, q) : undefined;
  if (type !== undefined) {
    if (!(POINTER_TYPES as readonly string[]).includes(type)) throw unprocessable(`filter criteria may name ImagingStudy or DocumentReference, not ${type.slice(0, 40)}`, at);
    if (spec.filterType && spec.filterType !== type) throw unprocessable('filter criteria name two different resource types', at);
    spec.filterType = type as PointerType;
  }
  for (const [key, value] of new URLSearchParams(q >= 0 ? raw.slice(q + 1) : raw)) {
    if (['patient.identifier', 'subject:identifier', 'subject.identifier', 'patient'].includes(key)) {
      const nhs = key === 'patient' ? value.replace(/^Patient\//, '') : value.startsWith(`${NHS_NUMBER_SYSTEM}|`) ? value.slice(NHS_NUMBER_SYSTEM.length + 1) : '';
      if (!isValidNhsNumber(nhs)) throw unprocessable(`filter ${key} needs ${NHS_NUMBER_SYSTEM}|<a valid NHS number>`, at, 'INVALID_NHS_NUMBER');
      spec.filterPatient = nhs;
    } else if (key === 'custodian' || key === 'custodian.identifier') {
      const ods = value.startsWith(`${ODS_SYSTEM}|`) ? value.slice(ODS_SYSTEM.length + 1) : value;
      if (!/^[A-Z0-9]{1,10}$/.test(ods)) throw unprocessable(`filter ${key} needs an ODS code`, at, 'INVALID_IDENTIFIER_VALUE');
      spec.filterCustodian = ods;
    } else {
      throw unprocessable(`filter parameter ${key.slice(0, 40)} is not supported: use patient.identifier or custodian`, at);
    }
  }
}

/**
 * Reads an R4 Subscription (backport profile) into what delivery needs. Every rejection is a 422
 * naming the element: a subscription that could not be honoured is never silently accepted.
 */
/** Fields of a notification request the registry owns (framing, addressing, media types). */
const RESERVED_HEADERS = new Set(['host', 'content-length', 'transfer-encoding', 'connection', 'keep-alive', 'upgrade', 'te', 'trailer', 'expect', 'content-type', 'content-encoding', 'accept']);

export function parseSubscription(body: unknown, options: { allowHttp: boolean; allowPrivate: boolean }): SubscriptionSpec {
  const parsed = subscriptionSchema.safeParse(body);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    throw unprocessable(`Subscription.${first?.path.join('.') ?? ''}: ${first?.message ?? 'invalid'}`, `Subscription.${first?.path.join('.') ?? ''}`);
  }
  const s = parsed.data;
  if (s.criteria !== POINTER_TOPIC) throw unprocessable(`Subscription.criteria must be the topic canonical ${POINTER_TOPIC}`, 'Subscription.criteria');
  if (s.channel.type !== 'rest-hook') throw unprocessable('Subscription.channel.type: only rest-hook is supported', 'Subscription.channel.type');
  let url: URL;
  try {
    url = new URL(s.channel.endpoint ?? '');
  } catch {
    throw unprocessable('Subscription.channel.endpoint must be an absolute URL', 'Subscription.channel.endpoint');
  }
  if (url.protocol !== 'https:' && !(options.allowHttp && url.protocol === 'http:')) {
    throw unprocessable('Subscription.channel.endpoint must use https', 'Subscription.channel.endpoint');
  }
  const refused = options.allowPrivate ? undefined : refusedHost(url.hostname);
  if (refused) throw unprocessable(`Subscription.channel.endpoint must be reachable at a public address: ${refused}`, 'Subscription.channel.endpoint');
  if (s.channel.payload && !/^application\/(fhir\+)?json/.test(s.channel.payload)) {
    throw unprocessable('Subscription.channel.payload: notifications are sent as application/fhir+json', 'Subscription.channel.payload');
  }
  const content = extValue(s.channel._payload?.extension, EXT_PAYLOAD_CONTENT, 'valueCode') ?? 'id-only';
  if (content !== 'id-only' && content !== 'full-resource') {
    throw unprocessable('Subscription.channel.payload content must be id-only or full-resource', 'Subscription.channel._payload');
  }
  const heartbeat = extValue(s.channel.extension, EXT_HEARTBEAT_PERIOD, 'valueUnsignedInt');
  if (heartbeat !== undefined && (!Number.isInteger(heartbeat) || (heartbeat as number) < 1 || (heartbeat as number) > 86400)) {
    throw unprocessable('the heartbeat period must be a whole number of seconds from 1 to 86400', 'Subscription.channel.extension');
  }
  const spec: Partial<SubscriptionSpec> = {};
  const filters = (s._criteria?.extension ?? []).filter((e) => e.url === EXT_FILTER_CRITERIA);
  filters.forEach((f, i) => {
    const v = (f as { valueString?: unknown }).valueString;
    if (typeof v !== 'string' || v.length > 512) throw unprocessable('filter criteria are valueString', `Subscription._criteria.extension[${i}]`);
    applyFilter(spec, v, `Subscription._criteria.extension[${i}]`);
  });
  if (!spec.filterPatient && !spec.filterCustodian) {
    throw unprocessable('a Subscription needs a filter by patient (patient.identifier) or by custodian: no network-wide feeds', 'Subscription._criteria');
  }
  (s.channel.header ?? []).forEach((h, i) => {
    // Printable ASCII values only: anything else is no valid HTTP field value (RFC 9110 §5.5).
    const m = /^([A-Za-z0-9-]{1,64}):[ \t]?([\x20-\x7e\t]{0,4000})$/.exec(h);
    if (!m) throw unprocessable('Subscription.channel.header entries are "Name: value" with a printable ASCII value', `Subscription.channel.header[${i}]`);
    // The registry frames and addresses its own requests: a subscriber's header may not change that.
    if (RESERVED_HEADERS.has((m[1] as string).toLowerCase())) throw unprocessable(`Subscription.channel.header may not set ${m[1] as string}: the registry sets it`, `Subscription.channel.header[${i}]`);
  });
  const { id: _id, meta: _meta, error: _error, ...rest } = s;
  return {
    // The server owns the status (backport): a client asks for `requested` (again) or `off`.
    status: s.status === 'off' ? 'off' : 'requested',
    topic: s.criteria,
    filterType: spec.filterType,
    filterPatient: spec.filterPatient,
    filterCustodian: spec.filterCustodian,
    endpoint: url.toString(),
    headers: s.channel.header ?? [],
    payload: content,
    heartbeatSeconds: heartbeat as number | undefined,
    resource: { ...rest, meta: { profile: [BACKPORT_SUBSCRIPTION_PROFILE] } },
  };
}
