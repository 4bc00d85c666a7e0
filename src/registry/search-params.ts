import type { IssueDetail } from '../fhir/errors';
import { FhirError, badRequest } from '../fhir/errors';
import type { SqlBuilder } from '../store/sql-builder';
import { NHS_NUMBER_SYSTEM, isValidNhsNumber } from './nhs-number';
import { ODS_SYSTEM } from './codes';
import { dateRange } from './fhir-datatypes';
import { DICOM_UID_SYSTEM, uidFromUrnOid } from './dicom-uid';

/**
 * One hand-written registry of the search parameters Locus supports: it drives both the SQL and
 * the CapabilityStatement, so the two cannot drift. Each parameter compiles a list of OR-ed values
 * into a predicate over typed columns (STYLE: "typed columns with composite indexes").
 */
export type SearchParamType = 'token' | 'date' | 'reference' | 'string' | 'uri';

export interface SearchParamDef {
  name: string;
  type: SearchParamType;
  expression: string;
  documentation: string;
  /** Canonical URL of the SearchParameter when it is not a base R4 one (fhir-profiles/). */
  definition?: string;
  modifiers?: readonly string[];
  /** Pins the search to one patient (a clinician search needs one of these or a selective one). */
  patient?: boolean;
  /** Pins the search to one study or item (identifier lookups), allowed without a patient. */
  selective?: boolean;
  compile(values: string[], modifier: string | undefined, b: SqlBuilder, alias: string): string;
}

const LOCUS_SP = 'https://locus.nhs.example/fhir/SearchParameter/';
export const locusSearchParameter = (id: string): string => `${LOCUS_SP}${id}`;

export function invalidParam(name: string, message: string): FhirError {
  return badRequest(`search parameter ${name}: ${message}`, name);
}

/**
 * The control parameters every search here reads the same way (pointer, AuditEvent and
 * Subscription searches): `_count` as a page size up to `max` (0 means a count only), `_summary`,
 * `_format`, and the warning for a parameter ignored outside strict handling.
 */
export function pageSizeParam(value: string, max: number): { count: number; countOnly: boolean } {
  if (!/^\d{1,6}$/.test(value)) throw badRequest('_count must be a non-negative whole number', '_count');
  const n = Number(value);
  return { count: Math.min(Math.max(n, 1), max), countOnly: n === 0 };
}

/** `_summary`: true for `count`, false for `false`, 400 otherwise. */
export function summaryCountParam(value: string): boolean {
  if (value === 'count') return true;
  if (value !== 'false') throw badRequest('_summary supports count and false', '_summary');
  return false;
}

export function formatParam(value: string): void {
  if (!/json/.test(value)) throw new FhirError(406, 'not-supported', 'this registry speaks JSON only (application/fhir+json)', 'INVALID_PARAMETER', '_format');
}

export function ignoredParamWarning(key: string): IssueDetail {
  return { severity: 'warning', code: 'not-supported', diagnostics: `search parameter ${key} is not supported and was ignored`, spine: 'INVALID_PARAMETER', expression: [key] };
}

function escapeLike(v: string): string {
  return v.replace(/[\\%_]/g, (c) => `\\${c}`);
}

/** Token search over a text[] column holding `system|code` and bare `code` entries. */
export function tokenArray(column: string, name: string) {
  return (values: string[], _m: string | undefined, b: SqlBuilder, alias: string): string => {
    const exact: string[] = [];
    const parts: string[] = [];
    for (const v of values) {
      if (v === '' || v === '|') throw invalidParam(name, 'empty token');
      if (v.endsWith('|') && v.indexOf('|') === v.length - 1) {
        parts.push(`exists (select 1 from unnest(${alias}.${column}) t where t like ${b.param(`${escapeLike(v)}%`)})`);
      } else {
        exact.push(v);
      }
    }
    if (exact.length > 0) parts.push(`${alias}.${column} && ${b.param(exact)}::text[]`);
    return parts.length === 1 ? (parts[0] as string) : `(${parts.join(' or ')})`;
  };
}

/** Token search over a scalar code column (status): `code` or `system|code` with the expected system. */
export function tokenScalar(column: string, name: string, system?: string, allowed?: readonly string[]) {
  return (values: string[], _m: string | undefined, b: SqlBuilder, alias: string): string => {
    const codes = values.map((v) => {
      const bar = v.lastIndexOf('|');
      const code = bar >= 0 ? v.slice(bar + 1) : v;
      if (bar >= 0 && system !== undefined && v.slice(0, bar) !== system && v.slice(0, bar) !== '') {
        throw new FhirError(400, 'invalid', `search parameter ${name}: identifier system must be ${system}`, 'INVALID_IDENTIFIER_SYSTEM', name);
      }
      if (!code || (allowed && !allowed.includes(code))) throw invalidParam(name, `'${code}' is not one of ${allowed?.join(', ') ?? 'the allowed values'}`);
      return code;
    });
    return `${alias}.${column} = any(${b.param(codes)}::text[])`;
  };
}

/** The patient by NHS number: `system|value` (system must be the NHS number system) or the bare number. */
export function nhsNumberValues(values: string[], name: string): string[] {
  return values.map((v) => {
    const bar = v.indexOf('|');
    if (bar >= 0 && v.slice(0, bar) !== NHS_NUMBER_SYSTEM) {
      throw new FhirError(400, 'invalid', `search parameter ${name}: identifier system must be ${NHS_NUMBER_SYSTEM}`, 'INVALID_IDENTIFIER_SYSTEM', name);
    }
    const nhs = bar >= 0 ? v.slice(bar + 1) : v;
    if (!isValidNhsNumber(nhs)) {
      throw new FhirError(400, 'invalid', `search parameter ${name}: not a valid NHS number`, 'INVALID_NHS_NUMBER', name);
    }
    return nhs;
  });
}

export function patientIdentifier(name: string) {
  return (values: string[], _m: string | undefined, b: SqlBuilder, alias: string): string => {
    const nhs = nhsNumberValues(values, name);
    return nhs.length === 1 ? `${alias}.patient_nhs = ${b.param(nhs[0] as string)}` : `${alias}.patient_nhs = any(${b.param(nhs)}::text[])`;
  };
}

/** ITI-67 `patient` is a reference; Locus has no Patient resources, so `Patient/<NHS number>` it is. */
export function patientReference(name: string) {
  return (values: string[], m: string | undefined, b: SqlBuilder, alias: string): string => {
    const ids = values.map((v) => {
      const match = /(?:^|\/)Patient\/([^/]+)$/.exec(v) ?? /^(\d{10})$/.exec(v);
      if (!match) throw invalidParam(name, 'expected Patient/<NHS number>');
      return match[1] as string;
    });
    return patientIdentifier(name)(ids, m, b, alias);
  };
}

export function odsToken(column: string, name: string) {
  return (values: string[], _m: string | undefined, b: SqlBuilder, alias: string): string => {
    const codes = values.map((v) => {
      const bar = v.indexOf('|');
      if (bar >= 0 && v.slice(0, bar) !== ODS_SYSTEM && v.slice(0, bar) !== '') {
        throw new FhirError(400, 'invalid', `search parameter ${name}: identifier system must be ${ODS_SYSTEM}`, 'INVALID_IDENTIFIER_SYSTEM', name);
      }
      const code = (bar >= 0 ? v.slice(bar + 1) : v).replace(/^Organization\//, '').toUpperCase();
      if (!/^[A-Z0-9]{1,10}$/.test(code)) throw invalidParam(name, 'not an ODS code');
      return code;
    });
    return `${alias}.${column} = any(${b.param(codes)}::text[])`;
  };
}

/** `identifier` with the R4 `:of-type` modifier (`type-system|type-code|value`, e.g. ACSN accession). */
export function identifierParam(column: string, name: string) {
  const plain = tokenArray(column, name);
  return (values: string[], modifier: string | undefined, b: SqlBuilder, alias: string): string => {
    if (modifier === 'of-type') {
      const tokens = values.map((v) => {
        if (v.split('|').length !== 3) throw invalidParam(`${name}:of-type`, 'expected type-system|type-code|value');
        return `of-type:${v}`;
      });
      return `${alias}.${column} && ${b.param(tokens)}::text[]`;
    }
    return plain(values, modifier, b, alias);
  };
}

/** Date search (R4 §3.1.1.4.2): both the value and the resource's element are ranges [lo, hi). */
export function dateParam(lo: string, hi: string, name: string) {
  return (values: string[], _m: string | undefined, b: SqlBuilder, alias: string): string => {
    const parts = values.map((raw) => {
      const m = /^(eq|ne|gt|lt|ge|le|sa|eb)?(.+)$/.exec(raw);
      const prefix = m?.[1] ?? 'eq';
      const range = m?.[2] ? dateRange(m[2]) : undefined;
      if (!range) throw invalidParam(name, `'${raw}' is not a FHIR date with an optional prefix (eq, ne, gt, lt, ge, le, sa, eb)`);
      // Parameters are bound only where used: PostgreSQL cannot type an unused placeholder.
      const s = (): string => `${b.param(range.lo)}::timestamptz`;
      const e = (): string => `${b.param(range.hi)}::timestamptz`;
      const L = `${alias}.${lo}`;
      const H = `${alias}.${hi}`;
      const within = (): string => `(${L} >= ${s()} and ${H} <= ${e()})`;
      switch (prefix) {
        case 'eq': return within();
        case 'ne': return `not ${within()}`;
        case 'gt': return `${H} > ${e()}`;
        case 'lt': return `${L} < ${s()}`;
        case 'ge': return `(${H} > ${e()} or ${within()})`;
        case 'le': return `(${L} < ${s()} or ${within()})`;
        case 'sa': return `${L} >= ${e()}`;
        case 'eb': return `${H} <= ${s()}`;
        default: throw invalidParam(name, `unsupported prefix ${prefix}`);
      }
    });
    return parts.length === 1 ? (parts[0] as string) : `(${parts.join(' or ')})`;
  };
}

/** `_lastUpdated` is an instant: its range is the single millisecond. */
export function instantParam(column: string, name: string) {
  const inner = dateParam(column, `${column}_hi`, name);
  return (values: string[], m: string | undefined, b: SqlBuilder, alias: string): string =>
    inner(values, m, b, alias).replaceAll(`${alias}.${column}_hi`, `(${alias}.${column} + interval '1 millisecond')`);
}

export function stringParam(column: string, name: string) {
  return (values: string[], modifier: string | undefined, b: SqlBuilder, alias: string): string => {
    const parts = values.map((v) => {
      const lower = v.toLowerCase();
      if (modifier === 'exact') return `${alias}.${column} = ${b.param(lower)}`;
      if (modifier === 'contains') return `${alias}.${column} like ${b.param(`%${escapeLike(lower)}%`)}`;
      return `${alias}.${column} like ${b.param(`${escapeLike(lower)}%`)}`;
    });
    return parts.length === 1 ? (parts[0] as string) : `(${parts.join(' or ')})`;
  };
}

export function idParam(name: string) {
  return (values: string[], _m: string | undefined, b: SqlBuilder, alias: string): string => {
    for (const v of values) if (!/^[A-Za-z0-9\-.]{1,64}$/.test(v)) throw invalidParam(name, 'not a FHIR id');
    return `${alias}.id = any(${b.param(values)}::text[])`;
  };
}

export function referenceIds(column: string, name: string, type: string) {
  return (values: string[], _m: string | undefined, b: SqlBuilder, alias: string): string => {
    const ids = values.map((v) => {
      const m = new RegExp(`^(?:.*/)?(?:${type}/)?([A-Za-z0-9\\-.]{1,64})$`).exec(v);
      if (!m) throw invalidParam(name, `expected ${type}/<id>`);
      return m[1] as string;
    });
    return `${alias}.${column} && ${b.param(ids)}::text[]`;
  };
}

export function referenceScalar(column: string, name: string, type: string) {
  return (values: string[], _m: string | undefined, b: SqlBuilder, alias: string): string => {
    const ids = values.map((v) => {
      const m = new RegExp(`^(?:.*/)?(?:${type}/)?([A-Za-z0-9\\-.]{1,64})$`).exec(v);
      if (!m) throw invalidParam(name, `expected ${type}/<id>`);
      return m[1] as string;
    });
    return `${alias}.${column} = any(${b.param(ids)}::text[])`;
  };
}

/** MADO `study-instance-uid`: the value is the UID, `urn:oid:<uid>`, or `urn:dicom:uid|urn:oid:<uid>`. */
export function studyUidValues(values: string[], name: string): string[] {
  return values.map((v) => {
    const value = v.startsWith(`${DICOM_UID_SYSTEM}|`) ? v.slice(DICOM_UID_SYSTEM.length + 1) : v;
    const uid = value.startsWith('urn:oid:') ? uidFromUrnOid(value) : uidFromUrnOid(`urn:oid:${value}`);
    if (!uid) throw new FhirError(400, 'invalid', `search parameter ${name}: not a valid DICOM UID`, 'INVALID_IDENTIFIER_VALUE', name);
    return uid;
  });
}

export function prefixedTokens(column: string, prefix: string, map: (values: string[]) => string[]) {
  return (values: string[], _m: string | undefined, b: SqlBuilder, alias: string): string =>
    `${alias}.${column} && ${b.param(map(values).map((v) => `${prefix}|${v}`))}::text[]`;
}
