import { randomUUID } from 'node:crypto';
import type { Principal } from '../access/principal';
import type { UnverifiedIdentity } from '../access/tokens';
import { ACT_REASON_SYSTEM, DCM_SYSTEM, ODS_SYSTEM } from '../registry/codes';
import { NHS_NUMBER_SYSTEM } from '../registry/nhs-number';

/** The FHIR interactions BALP names in AuditEvent.subtype (http://hl7.org/fhir/restful-interaction). */
export type AuditSubtype =
  | 'read'
  | 'vread'
  | 'update'
  | 'delete'
  | 'history-instance'
  | 'create'
  | 'search-type'
  | 'batch'
  | 'transaction'
  | 'capabilities'
  | 'operation';

/** BALP action: C create, R read, U update, D delete, E execute (query). */
export type AuditAction = 'C' | 'R' | 'U' | 'D' | 'E';
/** AuditEvent.outcome: 0 success, 4 minor failure, 8 serious failure, 12 major failure. */
export type AuditOutcome = '0' | '4' | '8' | '12';

/** The typed columns stored beside each AuditEvent's text, for review queries and verification. */
export interface AuditIndexColumns {
  patients: string[];
  agent_ods: string | null;
  agent_user: string | null;
  action: string;
  subtype: string;
  outcome: string;
  purpose: string | null;
  break_glass: boolean;
}

export interface AuditEntityRef {
  type: string;
  id: string;
  version?: number;
}

export interface AuditRecord {
  requestId: string;
  subtype: AuditSubtype;
  /** The operation's name when subtype is `operation` (e.g. `$resolve`). */
  operation?: string;
  action: AuditAction;
  outcome: AuditOutcome;
  outcomeDesc?: string;
  principal?: Principal;
  claimed?: UnverifiedIdentity;
  clientIp?: string;
  userAgent?: string;
  resourceType?: string;
  /** The search or operation query string, recorded base64 as BALP asks. */
  query?: string;
  patients: string[];
  entities: AuditEntityRef[];
  /** Set when consent or sharing rules withheld results from this request. */
  withheld?: boolean;
  extraDetail?: { type: string; value: string }[];
}

const BALP = 'https://profiles.ihe.net/ITI/BALP/StructureDefinition/';
const REGISTRY = 'Locus imaging pointer registry';

export function statusToOutcome(status: number): AuditOutcome {
  if (status < 400) return '0';
  if (status < 500) return '4';
  if (status === 503) return '12';
  return '8';
}

function profileFor(r: { action: AuditAction; patient: boolean }): string {
  const { patient } = r;
  switch (r.action) {
    case 'C': return `${BALP}IHE.BasicAudit.${patient ? 'PatientCreate' : 'Create'}`;
    case 'R': return `${BALP}IHE.BasicAudit.${patient ? 'PatientRead' : 'Read'}`;
    case 'U': return `${BALP}IHE.BasicAudit.${patient ? 'PatientUpdate' : 'Update'}`;
    case 'D': return `${BALP}IHE.BasicAudit.${patient ? 'PatientDelete' : 'Delete'}`;
    default: return `${BALP}IHE.BasicAudit.${patient ? 'PatientQuery' : 'Query'}`;
  }
}

export function isBreakGlassRecord(r: AuditRecord): boolean {
  return isBreakGlassAgent(r.principal);
}

function isBreakGlassAgent(a: AuditAgent | undefined): boolean {
  return a?.purposeOfUse === 'ETREAT' && a.breakGlassReason !== undefined;
}

/** What the trail keeps of a verified caller. */
export type AuditAgent = Pick<Principal, 'issuer' | 'subject' | 'organization' | 'role' | 'purposeOfUse' | 'breakGlassReason' | 'clientId' | 'tokenId' | 'userName'>;

/**
 * The stored form of one event (format 1): the facts of the interaction, as compact JSON. This
 * text is what the hash chain covers; the BALP AuditEvent is rendered from it when the trail is
 * reviewed (`renderAuditEvent`). Storing the facts rather than the rendered resource keeps an
 * event at a sixth of the size on the hot path of every search (less to build, hash, send,
 * compress and log to WAL) and keeps the evidence independent of how it is presented.
 * Events written before format 1 hold the rendered AuditEvent itself and are served as stored.
 */
export interface StoredAuditEvent extends Pick<AuditRecord, 'requestId' | 'subtype' | 'operation' | 'action' | 'outcome' | 'outcomeDesc' | 'claimed' | 'clientIp' | 'query'> {
  format: 1;
  id: string;
  recorded: string;
  /** The verified caller; absent when the token could not be verified (then `claimed`). */
  agent?: AuditAgent;
  /** NHS numbers the event concerns, each once. */
  patients: string[];
  /** References of the resources returned or touched: Type/id or Type/id/_history/version. */
  entities: string[];
  withheld?: true;
  detail?: { type: string; value: string }[];
}

/** The facts of one interaction as stored (see StoredAuditEvent). */
export function storedAuditEvent(r: AuditRecord, recorded: Date, id: string = randomUUID()): StoredAuditEvent {
  const p = r.principal;
  return {
    format: 1,
    id,
    recorded: recorded.toISOString(),
    requestId: r.requestId,
    subtype: r.subtype,
    ...(r.subtype === 'operation' ? { operation: r.operation ?? 'operation' } : {}),
    action: r.action,
    outcome: r.outcome,
    ...(r.outcomeDesc ? { outcomeDesc: r.outcomeDesc } : {}),
    ...(p
      ? {
          agent: {
            issuer: p.issuer,
            subject: p.subject,
            organization: p.organization,
            role: p.role,
            purposeOfUse: p.purposeOfUse,
            ...(isBreakGlassAgent(p) ? { breakGlassReason: p.breakGlassReason } : {}),
            ...(p.clientId ? { clientId: p.clientId } : {}),
            ...(p.tokenId ? { tokenId: p.tokenId } : {}),
            ...(p.userName ? { userName: p.userName } : {}),
          },
        }
      : r.claimed && (r.claimed.issuer || r.claimed.subject || r.claimed.organization)
        ? { claimed: { ...(r.claimed.issuer ? { issuer: r.claimed.issuer } : {}), ...(r.claimed.subject ? { subject: r.claimed.subject } : {}), ...(r.claimed.organization ? { organization: r.claimed.organization } : {}) } }
        : {}),
    ...(r.clientIp ? { clientIp: r.clientIp } : {}),
    ...(r.query !== undefined ? { query: r.query } : {}),
    patients: [...new Set(r.patients)],
    entities: r.entities.map((e) => `${e.type}/${e.id}${e.version ? `/_history/${e.version}` : ''}`),
    ...(r.withheld ? { withheld: true as const } : {}),
    ...(r.extraDetail && r.extraDetail.length > 0 ? { detail: r.extraDetail } : {}),
  };
}

/** The typed columns stored beside an event, derived from its facts (verify-columns.ts checks them against the text). */
export function auditColumnsOf(e: StoredAuditEvent): AuditIndexColumns {
  return {
    patients: e.patients,
    agent_ods: e.agent?.organization ?? e.claimed?.organization ?? null,
    agent_user: e.agent?.subject ?? e.claimed?.subject ?? null,
    action: e.action,
    subtype: e.subtype === 'operation' ? (e.operation ?? 'operation') : e.subtype,
    outcome: e.outcome,
    purpose: e.agent?.purposeOfUse ?? null,
    break_glass: isBreakGlassAgent(e.agent),
  };
}

/** Whether a stored text is format 1 (facts) rather than an AuditEvent stored by an earlier version. */
export function isStoredFacts(text: string): boolean {
  return text.startsWith('{"format":1,');
}

/** The FHIR AuditEvent JSON of a stored event (format 1 rendered; earlier rows as stored). */
export function renderAuditEvent(text: string): string {
  if (!isStoredFacts(text)) return text;
  return JSON.stringify(balpAuditEvent(JSON.parse(text) as StoredAuditEvent));
}

const ENTITY_OBJECT = { system: 'http://terminology.hl7.org/CodeSystem/audit-entity-type', code: '2', display: 'System Object' };

/** Builds the BALP-shaped AuditEvent (IHE ITI BALP, Basic Audit Log Patterns) for one stored event. */
export function balpAuditEvent(e: StoredAuditEvent): Record<string, unknown> {
  const p = e.agent;
  const org = p?.organization ?? e.claimed?.organization;
  const user = p?.subject ?? e.claimed?.subject;
  const purpose = p?.purposeOfUse;
  const breakGlass = isBreakGlassAgent(p);
  const purposeCoding = purpose ? [{ coding: [{ system: ACT_REASON_SYSTEM, code: purpose }] }] : undefined;
  const agents: Record<string, unknown>[] = [
    {
      type: { coding: [{ system: DCM_SYSTEM, code: '110153', display: 'Source Role ID' }] },
      who: { display: p?.clientId ?? 'unknown client' },
      requestor: false,
      ...(e.clientIp ? { network: { address: e.clientIp, type: '2' } } : {}),
    },
    { type: { coding: [{ system: DCM_SYSTEM, code: '110152', display: 'Destination Role ID' }] }, who: { display: REGISTRY }, requestor: false },
    {
      type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/extra-security-role-type', code: 'humanuser', display: 'human user' }] },
      who: { identifier: { system: p?.issuer ?? e.claimed?.issuer ?? 'unverified', value: user ?? 'anonymous' }, ...(p?.userName ? { display: p.userName } : {}) },
      ...(p ? { role: [{ coding: [{ system: 'https://locus.nhs.example/fhir/CodeSystem/role', code: p.role }] }] } : {}),
      requestor: true,
      ...(p?.tokenId ? { policy: [p.tokenId] } : {}),
      ...(purposeCoding ? { purposeOfUse: purposeCoding } : {}),
      ...(p ? {} : { extension: [{ url: 'https://locus.nhs.example/fhir/StructureDefinition/unverified-identity', valueBoolean: true }] }),
    },
  ];
  if (org) {
    agents.push({
      type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-RoleClass', code: 'PROV', display: 'healthcare provider' }] },
      who: { identifier: { system: ODS_SYSTEM, value: org } },
      requestor: false,
    });
  }
  const entities: Record<string, unknown>[] = [];
  for (const nhs of e.patients) {
    entities.push({
      what: { identifier: { system: NHS_NUMBER_SYSTEM, value: nhs } },
      type: { system: 'http://terminology.hl7.org/CodeSystem/audit-entity-type', code: '1', display: 'Person' },
      role: { system: 'http://terminology.hl7.org/CodeSystem/object-role', code: '1', display: 'Patient' },
    });
  }
  for (const reference of e.entities) {
    entities.push({ what: { reference }, type: ENTITY_OBJECT, role: { system: 'http://terminology.hl7.org/CodeSystem/object-role', code: '4', display: 'Domain Resource' } });
  }
  if (e.query !== undefined) {
    entities.push({ type: ENTITY_OBJECT, role: { system: 'http://terminology.hl7.org/CodeSystem/object-role', code: '24', display: 'Query' }, query: Buffer.from(e.query, 'utf8').toString('base64') });
  }
  const details = [
    ...(breakGlass ? [{ type: 'break-glass-reason', valueString: p?.breakGlassReason as string }] : []),
    ...(e.withheld ? [{ type: 'consent-withheld', valueString: 'results were withheld by consent or sharing rules' }] : []),
    ...(e.detail ?? []).map((d) => ({ type: d.type, valueString: d.value })),
  ];
  entities.push({
    what: { identifier: { value: e.requestId } },
    type: { system: 'https://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType', code: 'XrequestId', display: 'X-Request-Id' },
    ...(details.length > 0 ? { detail: details } : {}),
  });
  const kind = { action: e.action, patient: e.patients.length > 0 };
  return {
    resourceType: 'AuditEvent',
    id: e.id,
    meta: { profile: [profileFor(kind)], ...(breakGlass ? { security: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'BTG', display: 'break the glass' }] } : {}) },
    type: { system: 'http://terminology.hl7.org/CodeSystem/audit-event-type', code: 'rest', display: 'RESTful Operation' },
    subtype: [
      e.subtype === 'operation'
        ? { system: 'https://locus.nhs.example/fhir/CodeSystem/operation', code: e.operation ?? 'operation' }
        : { system: 'http://hl7.org/fhir/restful-interaction', code: e.subtype },
    ],
    action: e.action,
    recorded: e.recorded,
    outcome: e.outcome,
    ...(e.outcomeDesc ? { outcomeDesc: e.outcomeDesc } : {}),
    ...(purposeCoding ? { purposeOfEvent: purposeCoding } : {}),
    agent: agents,
    source: {
      observer: { display: REGISTRY },
      type: [{ system: 'http://terminology.hl7.org/CodeSystem/security-source-type', code: '4', display: 'Application Server' }],
    },
    entity: entities,
  };
}

/** The BALP AuditEvent of a record, as the review would show it once stored (tests, tools). */
export function buildAuditEvent(r: AuditRecord, recorded: Date, id: string = randomUUID()): Record<string, unknown> {
  return balpAuditEvent(storedAuditEvent(r, recorded, id));
}
