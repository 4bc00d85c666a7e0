import { z } from 'zod';
import { FhirError, badRequest } from '../fhir/errors';
import { ACT_REASON_SYSTEM, ODS_SYSTEM } from '../registry/codes';
import { NHS_NUMBER_SYSTEM } from '../registry/nhs-number';
import { idParam, instantParam, invalidParam, nhsNumberValues, odsToken, pageSizeParam, tokenScalar } from '../registry/search-params';
import { SqlBuilder } from '../store/sql-builder';

/**
 * AuditEvent search parameters (FHIR R4 AuditEvent search, plus Locus's `organization` and
 * `break-glass`), compiled to predicates over the typed columns of `audit_event`. Values only
 * ever travel as bind parameters. The same registry drives the CapabilityStatement entry.
 */
export interface AuditParamDef {
  name: string;
  type: 'token' | 'date' | 'reference' | 'string';
  documentation: string;
  compile(values: string[], b: SqlBuilder, patients: string[]): string;
}

export type ExportFormat = 'json' | 'csv' | 'ndjson';

const PATIENT_REF = /^(?:.*\/)?Patient\/(\d{10})$/;

function patientValues(values: string[], name: string, patients: string[]): string[] {
  const nhs = nhsNumberValues(values.map((v) => PATIENT_REF.exec(v)?.[1] ?? v), name);
  patients.push(...nhs);
  return nhs;
}

function users(values: string[], name: string): string[] {
  for (const v of values) if (v.length > 256) throw invalidParam(name, 'a user id is at most 256 characters');
  return values;
}

const scalar = (column: string, name: string, system: string | undefined, allowed?: readonly string[]) => {
  const compile = tokenScalar(column, name, system, allowed);
  return (values: string[], b: SqlBuilder): string => compile(values, undefined, b, 't');
};

export const AUDIT_PARAMS: AuditParamDef[] = [
  {
    name: 'patient',
    type: 'reference',
    documentation: 'The patient the event concerns: Patient/<NHS number> or the bare NHS number',
    compile: (values, b, patients) => `t.patients && ${b.param(patientValues(values, 'patient', patients))}::text[]`,
  },
  {
    name: 'entity-identifier',
    type: 'token',
    documentation: `An entity identifier: the patient's NHS number (${NHS_NUMBER_SYSTEM}|<value> or the bare number)`,
    compile: (values, b, patients) => `t.patients && ${b.param(patientValues(values, 'entity-identifier', patients))}::text[]`,
  },
  {
    name: 'agent',
    type: 'reference',
    documentation: "The user who acted: the token's subject (user or system id)",
    compile: (values, b) => `t.agent_user = any(${b.param(users(values, 'agent'))}::text[])`,
  },
  {
    name: 'agent-identifier',
    type: 'token',
    documentation: 'The user who acted, as <token issuer>|<subject> or the bare subject',
    compile: (values, b) => {
      const parts = values.map((v) => {
        const bar = v.lastIndexOf('|');
        const [system, value] = bar >= 0 ? [v.slice(0, bar), v.slice(bar + 1)] : ['', v];
        users([value], 'agent-identifier');
        if (!value) throw invalidParam('agent-identifier', 'empty user id');
        if (!system) return `t.agent_user = ${b.param(value)}`;
        // The issuer is not a column: the indexed user match narrows first, then the stored event
        // decides (format 1 facts name it as agent or claimed issuer; earlier rows hold BALP agents).
        const facts = [{ agent: { issuer: system, subject: value } }, { claimed: { issuer: system, subject: value } }].map((f) => `t.resource::jsonb @> ${b.param(JSON.stringify(f))}::jsonb`);
        // A claimed identity without an issuer is shown as system 'unverified' (audit-event.ts).
        if (system === 'unverified') facts.push(`(t.resource::jsonb @> ${b.param(JSON.stringify({ claimed: { subject: value } }))}::jsonb and not (t.resource::jsonb -> 'claimed') ? 'issuer')`);
        const balp = `(t.resource::jsonb -> 'agent') @> ${b.param(JSON.stringify([{ who: { identifier: { system, value } } }]))}::jsonb`;
        return `(t.agent_user = ${b.param(value)} and (${facts.join(' or ')} or ${balp}))`;
      });
      return parts.length === 1 ? (parts[0] as string) : `(${parts.join(' or ')})`;
    },
  },
  {
    name: 'agent-organization',
    type: 'token',
    documentation: `The organisation of the user who acted (ODS code, ${ODS_SYSTEM}|<code> or bare)`,
    compile: (values, b) => odsToken('agent_ods', 'agent-organization')(values, undefined, b, 't'),
  },
  {
    name: 'organization',
    type: 'token',
    documentation: 'Locus alias of agent-organization: the acting organisation by ODS code',
    compile: (values, b) => odsToken('agent_ods', 'organization')(values, undefined, b, 't'),
  },
  {
    name: 'date',
    type: 'date',
    documentation: 'When the event was recorded (prefixes eq, ne, gt, lt, ge, le, sa, eb)',
    compile: (values, b) => instantParam('recorded', 'date')(values, undefined, b, 't'),
  },
  { name: 'action', type: 'token', documentation: 'C, R, U, D or E', compile: scalar('action', 'action', 'http://hl7.org/fhir/audit-event-action', ['C', 'R', 'U', 'D', 'E']) },
  { name: 'outcome', type: 'token', documentation: '0 success, 4 minor failure (denied, invalid), 8 serious, 12 major', compile: scalar('outcome', 'outcome', 'http://hl7.org/fhir/audit-event-outcome', ['0', '4', '8', '12']) },
  { name: 'subtype', type: 'token', documentation: 'The interaction (read, search-type, create, ...) or operation name', compile: scalar('subtype', 'subtype', undefined) },
  { name: 'purpose', type: 'token', documentation: `Purpose of use (${ACT_REASON_SYSTEM}): TREAT, ETREAT (emergency, break-glass), ...`, compile: scalar('purpose', 'purpose', ACT_REASON_SYSTEM) },
  {
    name: 'break-glass',
    type: 'token',
    documentation: 'true: only emergency (break-glass) accesses with a stated reason; false: none of them',
    compile: (values, b) => {
      if (values.length !== 1 || !['true', 'false'].includes(values[0] as string)) throw invalidParam('break-glass', 'true or false');
      return `t.break_glass = ${b.param(values[0] === 'true')}`;
    },
  },
  { name: '_id', type: 'token', documentation: 'The AuditEvent id', compile: (values, b) => idParam('_id')(values, undefined, b, 't') },
];

const cursorSchema = z.object({ k: z.iso.datetime(), i: z.number().int().nonnegative(), d: z.enum(['n', 'p']), s: z.enum(['date', '-date']) }).strict();
export type AuditCursor = z.infer<typeof cursorSchema>;

export function encodeAuditCursor(c: AuditCursor): string {
  return Buffer.from(JSON.stringify(c)).toString('base64url');
}

function decodeAuditCursor(raw: string): AuditCursor {
  try {
    return cursorSchema.parse(JSON.parse(Buffer.from(raw, 'base64url').toString('utf8')));
  } catch {
    throw badRequest('_cursor is not a cursor this server issued', '_cursor');
  }
}

export interface AuditQuery {
  where: string[];
  b: SqlBuilder;
  /** NHS numbers the auditor asked about: the audit of this review names them. */
  patients: string[];
  /** The parameters that define the result set (no cursor), to build links and exports. */
  kept: [string, string][];
  count: number;
  descending: boolean;
  cursor?: AuditCursor;
  format: ExportFormat;
}

const FORMATS: Record<string, ExportFormat> = {
  json: 'json',
  'application/json': 'json',
  'application/fhir+json': 'json',
  csv: 'csv',
  'text/csv': 'csv',
  ndjson: 'ndjson',
  'application/x-ndjson': 'ndjson',
  'application/fhir+ndjson': 'ndjson',
  'application/ndjson': 'ndjson',
};

/** The export format asked for: `_format` wins, then the Accept header; JSON by default. */
export function formatOf(params: [string, string][], accept: string | undefined): ExportFormat {
  const given = params.find(([k]) => k === '_format')?.[1];
  if (given !== undefined) {
    const f = FORMATS[given.split(';')[0]?.trim().toLowerCase() ?? ''];
    if (!f) throw new FhirError(406, 'not-supported', '_format for AuditEvent is json, csv or ndjson', 'INVALID_PARAMETER', '_format');
    return f;
  }
  const types = (accept ?? '').split(',').map((t) => t.split(';')[0]?.trim().toLowerCase() ?? '');
  if (types.includes('text/csv')) return 'csv';
  if (types.some((t) => t.endsWith('ndjson'))) return 'ndjson';
  return 'json';
}

export interface AuditQueryOptions {
  defaultPageSize: number;
  maxPageSize: number;
  accept?: string;
}

/**
 * Parses AuditEvent search parameters. Unknown parameters are refused (400), never ignored: an
 * auditor must not believe a result set is filtered when it is not.
 */
export function parseAuditQuery(params: [string, string][], o: AuditQueryOptions): AuditQuery {
  const out: AuditQuery = { where: [], b: new SqlBuilder(), patients: [], kept: [], count: Math.min(o.defaultPageSize, o.maxPageSize), descending: true, format: formatOf(params, o.accept) };
  if (params.length > 50) throw badRequest('too many search parameters (at most 50)');
  for (const [key, value] of params) {
    if (value.length > 2048) throw badRequest(`search parameter ${key} is too long`, key);
    switch (key) {
      case '_count':
        out.count = pageSizeParam(value, o.maxPageSize).count;
        out.kept.push([key, value]);
        continue;
      case '_sort':
        if (value !== 'date' && value !== '-date') throw badRequest('_sort for AuditEvent supports date and -date', '_sort');
        out.descending = value === '-date';
        out.kept.push([key, value]);
        continue;
      case '_cursor':
        out.cursor = decodeAuditCursor(value);
        continue;
      case '_format':
        out.kept.push([key, value]);
        continue;
      default:
    }
    const def = AUDIT_PARAMS.find((p) => p.name === key);
    if (!def) throw badRequest(`unknown or unsupported search parameter ${key.slice(0, 64)} for AuditEvent`, key.slice(0, 64));
    // R4 search §3.1.1.4.5 (escaping): `\,` is a comma inside a value, not a separator.
    const values = value.split(/(?<!\\),/).map((v) => v.replace(/\\([,$|\\])/g, '$1').trim());
    if (values.some((v) => v === '')) throw badRequest(`search parameter ${key} has an empty value`, key);
    out.where.push(def.compile(values, out.b, out.patients));
    out.kept.push([key, value]);
  }
  if (out.cursor && out.cursor.s !== (out.descending ? '-date' : 'date')) throw badRequest('_cursor belongs to a search with another _sort', '_cursor');
  return out;
}
