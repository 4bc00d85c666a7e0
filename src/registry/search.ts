import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { PointerPolicy } from '../access/policy';
import type { Principal } from '../access/principal';
import type { IssueDetail } from '../fhir/errors';
import { FhirError, badRequest, issue } from '../fhir/errors';
import type { Queryable } from '../store/database';
import { SqlBuilder } from '../store/sql-builder';
import type { ResourceTypeDef, SortDef } from './resource-types';
import { endpointDef } from './resource-types';
import type { SearchParamDef } from './search-params';
import { nhsNumberValues } from './search-params';

export interface SearchRequest {
  def: ResourceTypeDef;
  /** Query (and form body) parameters in order, undecoded names and decoded values. */
  params: [string, string][];
  strict: boolean;
  principal: Principal;
  policy: PointerPolicy;
  /** The FHIR base URL as the client sees it, e.g. http://localhost:8080/fhir */
  fhirBase: string;
  maxPageSize: number;
  defaultPageSize: number;
  now?: Date;
}

export interface SearchResult {
  bundle: string;
  /** Pointers returned (type/id/version), for the audit trail. */
  returned: { type: string; id: string; version: number; patient?: string }[];
  /** NHS numbers the caller searched for, matched or not. */
  patients: string[];
  total?: number;
  /** Consent or sharing rules withheld results that break-glass could reveal. */
  withheld?: boolean;
}

const CONTROL = new Set(['_count', '_sort', '_cursor', '_summary', '_include', '_total', '_format', '_pretty']);

const cursorSchema = z.object({ k: z.string().max(64), i: z.string().regex(/^[A-Za-z0-9\-.]{1,64}$/), d: z.enum(['n', 'p']), s: z.string().max(32) }).strict();
type Cursor = z.infer<typeof cursorSchema>;

export function encodeCursor(c: Cursor): string {
  return Buffer.from(JSON.stringify(c)).toString('base64url');
}

function decodeCursor(raw: string): Cursor {
  try {
    return cursorSchema.parse(JSON.parse(Buffer.from(raw, 'base64url').toString('utf8')));
  } catch {
    throw badRequest('_cursor is not a cursor this server issued', '_cursor');
  }
}

interface ParsedSearch {
  where: string[];
  b: SqlBuilder;
  kept: [string, string][];
  ignored: string[];
  patients: string[];
  count: number;
  summaryCount: boolean;
  totalAccurate: boolean;
  sort: SortDef;
  descending: boolean;
  cursor?: Cursor;
  includeEndpoint: boolean;
}

function findParam(def: ResourceTypeDef, key: string): { param: SearchParamDef; modifier?: string } | undefined {
  const exact = def.searchParams.find((p) => p.name === key);
  if (exact) return { param: exact };
  const colon = key.indexOf(':');
  if (colon < 0) return undefined;
  const param = def.searchParams.find((p) => p.name === key.slice(0, colon));
  const modifier = key.slice(colon + 1);
  return param && param.modifiers?.includes(modifier) ? { param, modifier } : undefined;
}

function parseControl(req: SearchRequest, key: string, value: string, out: ParsedSearch): void {
  switch (key) {
    case '_count': {
      if (!/^\d{1,6}$/.test(value)) throw badRequest('_count must be a non-negative whole number', '_count');
      const n = Number(value);
      if (n === 0) out.summaryCount = true;
      out.count = Math.min(Math.max(n, 1), req.maxPageSize);
      return;
    }
    case '_sort': {
      const descending = value.startsWith('-');
      const sort = req.def.sorts.find((s) => s.name === value.replace(/^-/, ''));
      if (!sort) throw badRequest(`_sort supports ${req.def.sorts.flatMap((s) => [s.name, `-${s.name}`]).join(', ')}`, '_sort');
      out.sort = sort;
      out.descending = descending;
      return;
    }
    case '_cursor':
      out.cursor = decodeCursor(value);
      return;
    case '_summary':
      if (value === 'count') out.summaryCount = true;
      else if (value !== 'false') throw badRequest('_summary supports count and false', '_summary');
      return;
    case '_total':
      if (!['none', 'estimate', 'accurate'].includes(value)) throw badRequest('_total is none, estimate or accurate', '_total');
      out.totalAccurate = value === 'accurate';
      return;
    case '_include':
      if (req.def.type !== 'ImagingStudy' || value !== 'ImagingStudy:endpoint') throw badRequest(`_include supports ImagingStudy:endpoint only`, '_include');
      out.includeEndpoint = true;
      return;
    case '_format':
      if (!/json/.test(value)) throw new FhirError(406, 'not-supported', 'this registry speaks JSON only (application/fhir+json)', 'INVALID_PARAMETER', '_format');
      return;
    default:
  }
}

export function parseSearch(req: SearchRequest): ParsedSearch {
  const [defaultSortName = '_lastUpdated'] = [req.def.defaultSort.replace(/^-/, '')];
  const out: ParsedSearch = {
    where: [],
    b: new SqlBuilder(),
    kept: [],
    ignored: [],
    patients: [],
    count: Math.min(req.defaultPageSize, req.maxPageSize),
    summaryCount: false,
    totalAccurate: false,
    sort: req.def.sorts.find((s) => s.name === defaultSortName) as SortDef,
    descending: req.def.defaultSort.startsWith('-'),
    includeEndpoint: false,
  };
  let hasPatient = false;
  let hasSelective = false;
  let hasStatus = false;
  if (req.params.length > 50) throw badRequest('too many search parameters (at most 50)');
  for (const [key, value] of req.params) {
    if (value.length > 2048) throw badRequest(`search parameter ${key} is too long`, key);
    if (CONTROL.has(key)) {
      parseControl(req, key, value, out);
      if (key !== '_cursor') out.kept.push([key, value]);
      continue;
    }
    const found = findParam(req.def, key);
    if (!found) {
      if (req.strict) throw badRequest(`unknown or unsupported search parameter ${key} for ${req.def.type}`, key);
      out.ignored.push(key);
      continue;
    }
    const values = value.split(',').map((v) => v.trim());
    if (values.some((v) => v === '')) throw badRequest(`search parameter ${key} has an empty value`, key);
    out.where.push(found.param.compile(values, found.modifier, out.b, 't'));
    out.kept.push([key, value]);
    if (found.param.patient) {
      hasPatient = true;
      const nhs = found.param.name === 'patient' ? values.map((v) => v.replace(/^.*Patient\//, '')) : nhsNumberValues(values, key);
      out.patients.push(...nhs);
    }
    if (found.param.selective) hasSelective = true;
    if (found.param.name === 'status') hasStatus = true;
  }
  if (req.def.pointer && !hasPatient && !hasSelective) {
    throw badRequest(
      `a ${req.def.type} search needs the patient (patient.identifier=https://fhir.nhs.uk/Id/nhs-number|<NHS number>) or an exact identifier: this is a per-patient register, not a bulk export`,
      'patient.identifier',
    );
  }
  // ITI-67 / NRL: only current pointers unless the caller asks for a status.
  if (req.def.type === 'DocumentReference' && !hasStatus) out.where.push(`t.status = 'current'`);
  return out;
}

function selfQuery(kept: [string, string][], extra?: [string, string]): string {
  const qs = new URLSearchParams(extra ? [...kept, extra] : kept).toString();
  return qs ? `?${qs}` : '';
}

/**
 * Runs a FHIR search: one statement for the page (policy predicate included, before paging),
 * keyset-paged, and a Bundle spliced from the stored JSON text without parsing it.
 */
export async function searchResources(q: Queryable, req: SearchRequest): Promise<SearchResult> {
  const now = req.now ?? new Date();
  const s = parseSearch(req);
  const { def } = req;
  const { b } = s;
  const visible = def.pointer ? req.policy.visible(req.principal, 't', def.type as 'ImagingStudy', b, now) : undefined;
  const where = visible ? [...s.where, visible] : [...s.where];
  const warnings: IssueDetail[] = s.ignored.map((k) => ({ severity: 'warning', code: 'not-supported', diagnostics: `search parameter ${k} is not supported and was ignored`, spine: 'INVALID_PARAMETER', expression: [k] }));
  const base = `${req.fhirBase}/${def.type}`;

  if (s.summaryCount || s.totalAccurate) {
    const countB = new SqlBuilder();
    countB.params.push(...b.params);
    const r = await q.query<{ n: number }>(`select count(*)::int as n from ${def.table} t where ${where.join(' and ')}`, countB.params);
    const total = r.rows[0]?.n ?? 0;
    if (s.summaryCount) {
      return { bundle: bundleText(`${base}${selfQuery(s.kept)}`, [], warnings, total), returned: [], patients: s.patients, total };
    }
    return finishPage(q, req, s, where, visible, base, warnings, total);
  }
  return finishPage(q, req, s, where, visible, base, warnings, undefined);
}

interface PageRow {
  id: string | null;
  version: number;
  resource: string;
  sort_key: Date;
  patient_nhs?: string;
  endpoint_ids?: string[];
  withheld?: boolean;
}

/**
 * The page query. For a patient search by a caller who is not breaking glass, one scan of the
 * patient's rows within break-glass reach both pages the visible ones and tells whether any were
 * withheld (a window over the same rows); only an empty page needs a second look.
 */
async function pageRows(q: Queryable, req: SearchRequest, s: ParsedSearch, where: string[], visible: string | undefined, desc: boolean): Promise<{ rows: PageRow[]; withheld: boolean }> {
  const { def } = req;
  const { b, sort } = s;
  const now = req.now ?? new Date();
  const dir = desc ? 'desc' : 'asc';
  const cursor = (alias: string, column: string): string => {
    if (!s.cursor) return '';
    const k = new Date(s.cursor.k);
    if (Number.isNaN(k.getTime())) throw badRequest('_cursor is not a cursor this server issued', '_cursor');
    return ` and (${alias}.${column}, ${alias}.id) ${desc ? '<' : '>'} (${b.param(k)}::timestamptz, ${b.param(s.cursor.i)})`;
  };
  const cols = `t.id, t.version, t.resource, t.${sort.column} as sort_key${def.pointer ? ', t.patient_nhs' : ''}${s.includeEndpoint ? ', t.endpoint_ids' : ''}`;
  const kind = def.type as 'ImagingStudy';
  const reach = visible && s.patients.length > 0 ? req.policy.reach?.(req.principal, 't', kind, b, now) : undefined;
  if (!reach) {
    const sql = `select ${cols} from ${def.table} t where ${where.join(' and ')}${cursor('t', sort.column)} order by t.${sort.column} ${dir}, t.id ${dir} limit ${s.count + 1}`;
    return { rows: (await q.query<PageRow>(sql, b.params)).rows, withheld: false };
  }
  const inner = `select ${cols}, ${visible} as v from ${def.table} t where ${s.where.join(' and ')} and ${reach}`;
  const sql = `select m.* from (select i.*, bool_or(not i.v) over () as withheld from (${inner}) i) m
    where m.v${cursor('m', 'sort_key')} order by m.sort_key ${dir}, m.id ${dir} limit ${s.count + 1}`;
  const rows = (await q.query<PageRow>(sql, b.params)).rows;
  if (rows.length > 0) return { rows, withheld: rows[0]?.withheld === true };
  // Nothing visible on this page: ask separately whether break-glass would show anything.
  const w = new SqlBuilder();
  const revealable = req.policy.revealableByBreakGlass?.(req.principal, 'w', kind, w, now);
  if (!revealable) return { rows, withheld: false };
  const found = await q.query(`select 1 from ${def.table} w where w.patient_nhs = any(${w.param(s.patients)}::text[]) and ${revealable} limit 1`, w.params);
  return { rows, withheld: found.rowCount > 0 };
}

async function finishPage(
  q: Queryable,
  req: SearchRequest,
  s: ParsedSearch,
  where: string[],
  visible: string | undefined,
  base: string,
  warnings: IssueDetail[],
  total: number | undefined,
): Promise<SearchResult> {
  const { def } = req;
  const { sort } = s;
  const backwards = s.cursor?.d === 'p';
  const desc = s.descending !== backwards;
  if (s.cursor && s.cursor.s !== `${s.descending ? '-' : ''}${sort.name}`) throw badRequest('_cursor belongs to a search with another _sort', '_cursor');
  const r = await pageRows(q, req, s, where, visible, desc);
  const withheld = r.withheld;
  if (withheld) {
    warnings.push({ severity: 'warning', code: 'suppressed', diagnostics: 'Some results were withheld by consent or sharing rules; emergency (break-glass) access with a stated reason could reveal them.', spine: 'ACCESS_DENIED' });
  }
  let rows = r.rows.filter((row): row is typeof row & { id: string } => row.id !== null);
  const more = rows.length > s.count;
  if (more) rows = rows.slice(0, s.count);
  if (backwards) rows = rows.reverse();

  const sortName = `${s.descending ? '-' : ''}${sort.name}`;
  const links: [string, string][] = [['self', `${base}${selfQuery(s.kept, s.cursor ? ['_cursor', encodeCursor(s.cursor)] : undefined)}`]];
  const first = rows[0];
  const last = rows[rows.length - 1];
  const hasNext = backwards ? Boolean(s.cursor) : more;
  const hasPrev = backwards ? more : Boolean(s.cursor);
  if (hasNext && last) links.push(['next', `${base}${selfQuery(s.kept, ['_cursor', encodeCursor({ k: last.sort_key.toISOString(), i: last.id, d: 'n', s: sortName })])}`]);
  if (hasPrev && first) links.push(['previous', `${base}${selfQuery(s.kept, ['_cursor', encodeCursor({ k: first.sort_key.toISOString(), i: first.id, d: 'p', s: sortName })])}`]);

  const entries = rows.map((row) => entryText(`${req.fhirBase}/${def.type}/${row.id}`, row.resource, 'match'));
  if (s.includeEndpoint) {
    const ids = [...new Set(rows.flatMap((row) => row.endpoint_ids ?? []))];
    if (ids.length > 0) {
      const inc = await q.query<{ id: string; resource: string }>(`select id, resource from ${endpointDef.table} where id = any($1::text[]) order by id`, [ids]);
      for (const e of inc.rows) entries.push(entryText(`${req.fhirBase}/Endpoint/${e.id}`, e.resource, 'include'));
    }
  }
  return {
    bundle: bundleText(links, entries, warnings, total),
    returned: rows.map((row) => ({ type: def.type, id: row.id, version: row.version, patient: row.patient_nhs })),
    patients: s.patients,
    total,
    withheld,
  };
}

export function entryText(fullUrl: string, resource: string, mode: 'match' | 'include' | 'outcome'): string {
  return `{"fullUrl":${JSON.stringify(fullUrl)},"resource":${resource},"search":{"mode":"${mode}"}}`;
}

/** Splices stored resource texts into a searchset Bundle (DESIGN: no parse/stringify on the read path). */
export function bundleText(
  links: string | [string, string][],
  entries: string[],
  warnings: IssueDetail[],
  total?: number,
): string {
  const linkList = typeof links === 'string' ? [['self', links] as [string, string]] : links;
  const all = [...entries];
  if (warnings.length > 0) {
    const oo = JSON.stringify({ resourceType: 'OperationOutcome', issue: warnings.map(issue) });
    all.push(`{"resource":${oo},"search":{"mode":"outcome"}}`);
  }
  const meta = `{"lastUpdated":${JSON.stringify(new Date().toISOString())}}`;
  const totalText = total === undefined ? '' : `,"total":${total}`;
  const linkText = linkList.map(([relation, url]) => `{"relation":"${relation}","url":${JSON.stringify(url)}}`).join(',');
  // FHIR JSON has no empty arrays: no matches means no `entry` at all.
  const entryList = all.length > 0 ? `,"entry":[${all.join(',')}]` : '';
  return `{"resourceType":"Bundle","id":"${randomUUID()}","meta":${meta},"type":"searchset"${totalText},"link":[${linkText}]${entryList}}`;
}
