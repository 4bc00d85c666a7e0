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

function profileFor(r: AuditRecord): string {
  const patient = r.patients.length > 0;
  switch (r.action) {
    case 'C': return `${BALP}IHE.BasicAudit.${patient ? 'PatientCreate' : 'Create'}`;
    case 'R': return `${BALP}IHE.BasicAudit.${patient ? 'PatientRead' : 'Read'}`;
    case 'U': return `${BALP}IHE.BasicAudit.${patient ? 'PatientUpdate' : 'Update'}`;
    case 'D': return `${BALP}IHE.BasicAudit.${patient ? 'PatientDelete' : 'Delete'}`;
    default: return `${BALP}IHE.BasicAudit.${patient ? 'PatientQuery' : 'Query'}`;
  }
}

export function isBreakGlassRecord(r: AuditRecord): boolean {
  return r.principal?.purposeOfUse === 'ETREAT' && r.principal.breakGlassReason !== undefined;
}

/** Builds the BALP-shaped AuditEvent (IHE ITI BALP, Basic Audit Log Patterns) for one interaction. */
export function buildAuditEvent(r: AuditRecord, recorded: Date, id: string = randomUUID()): Record<string, unknown> {
  const p = r.principal;
  const org = p?.organization ?? r.claimed?.organization;
  const user = p?.subject ?? r.claimed?.subject;
  const purpose = p?.purposeOfUse;
  const purposeCoding = purpose ? [{ coding: [{ system: ACT_REASON_SYSTEM, code: purpose }] }] : undefined;
  const agents: Record<string, unknown>[] = [
    {
      type: { coding: [{ system: DCM_SYSTEM, code: '110153', display: 'Source Role ID' }] },
      who: { display: p?.clientId ?? 'unknown client' },
      requestor: false,
      ...(r.clientIp ? { network: { address: r.clientIp, type: '2' } } : {}),
    },
    { type: { coding: [{ system: DCM_SYSTEM, code: '110152', display: 'Destination Role ID' }] }, who: { display: REGISTRY }, requestor: false },
    {
      type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/extra-security-role-type', code: 'humanuser', display: 'human user' }] },
      who: { identifier: { system: p?.issuer ?? r.claimed?.issuer ?? 'unverified', value: user ?? 'anonymous' }, ...(p?.userName ? { display: p.userName } : {}) },
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
  for (const nhs of r.patients) {
    entities.push({
      what: { identifier: { system: NHS_NUMBER_SYSTEM, value: nhs } },
      type: { system: 'http://terminology.hl7.org/CodeSystem/audit-entity-type', code: '1', display: 'Person' },
      role: { system: 'http://terminology.hl7.org/CodeSystem/object-role', code: '1', display: 'Patient' },
    });
  }
  for (const e of r.entities) {
    entities.push({
      what: { reference: `${e.type}/${e.id}${e.version ? `/_history/${e.version}` : ''}` },
      type: { system: 'http://terminology.hl7.org/CodeSystem/audit-entity-type', code: '2', display: 'System Object' },
      role: { system: 'http://terminology.hl7.org/CodeSystem/object-role', code: '4', display: 'Domain Resource' },
    });
  }
  if (r.query !== undefined) {
    entities.push({
      type: { system: 'http://terminology.hl7.org/CodeSystem/audit-entity-type', code: '2', display: 'System Object' },
      role: { system: 'http://terminology.hl7.org/CodeSystem/object-role', code: '24', display: 'Query' },
      query: Buffer.from(r.query, 'utf8').toString('base64'),
    });
  }
  const details = [
    ...(isBreakGlassRecord(r) ? [{ type: 'break-glass-reason', valueString: p?.breakGlassReason as string }] : []),
    ...(r.withheld ? [{ type: 'consent-withheld', valueString: 'results were withheld by consent or sharing rules' }] : []),
    ...(r.extraDetail ?? []).map((d) => ({ type: d.type, valueString: d.value })),
  ];
  entities.push({
    what: { identifier: { value: r.requestId } },
    type: { system: 'https://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType', code: 'XrequestId', display: 'X-Request-Id' },
    ...(details.length > 0 ? { detail: details } : {}),
  });
  return {
    resourceType: 'AuditEvent',
    id,
    meta: { profile: [profileFor(r)], ...(isBreakGlassRecord(r) ? { security: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'BTG', display: 'break the glass' }] } : {}) },
    type: { system: 'http://terminology.hl7.org/CodeSystem/audit-event-type', code: 'rest', display: 'RESTful Operation' },
    subtype: [
      r.subtype === 'operation'
        ? { system: 'https://locus.nhs.example/fhir/CodeSystem/operation', code: r.operation ?? 'operation' }
        : { system: 'http://hl7.org/fhir/restful-interaction', code: r.subtype },
    ],
    action: r.action,
    recorded: recorded.toISOString(),
    outcome: r.outcome,
    ...(r.outcomeDesc ? { outcomeDesc: r.outcomeDesc } : {}),
    ...(purposeCoding ? { purposeOfEvent: purposeCoding } : {}),
    agent: agents,
    source: {
      observer: { display: REGISTRY },
      type: [{ system: 'http://terminology.hl7.org/CodeSystem/security-source-type', code: '4', display: 'Application Server' }],
    },
    entity: entities,
  };
}
