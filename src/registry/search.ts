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
import { formatParam, ignoredParamWarning, nhsNumberValues, pageSizeParam, summaryCountParam } from './search-params';

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
      const { count, countOnly } = pageSizeParam(value, req.maxPageSize);
      if (countOnly) out.summaryCount = true;
      out.count = count;
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
      if (summaryCountParam(value)) out.summaryCount = true;
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
      formatParam(value);
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
  let s = parseSearch(req);
  const { def } = req;
  if (s.cursor && s.cursor.s !== `${s.descending ? '-' : ''}${s.sort.name}`) throw badRequest('_cursor belongs to a search with another _sort', '_cursor');
  const onePatient = new Set(s.patients).size === 1 ? s.patients[0] : undefined;
  const warnings: IssueDetail[] = s.ignored.map(ignoredParamWarning);
  const base = `${req.fhirBase}/${def.type}`;
  if (def.pointer && onePatient !== undefined && !s.cursor && !s.summaryCount && !s.totalAccurate && req.policy.breakGlassCouldReveal?.(req.principal) === true) {
    const page = await quickPage(q, req, s, onePatient, now);
    if (page) return finishPage(q, req, s, page, base, warnings, undefined);
    s = parseSearch(req); // the quick scan's values are bound in s.b: the exact scan composes afresh
  }
  const { b } = s;
  const visible = def.pointer ? req.policy.visible(req.principal, 't', def.type as 'ImagingStudy', b, now, onePatient) : undefined;
  const where = visible ? [...s.where, visible] : [...s.where];

  if (s.summaryCount || s.totalAccurate) {
    const countB = new SqlBuilder();
    countB.params.push(...b.params);
    const r = await q.query<{ n: number }>(`select count(*)::int as n from ${def.table} t where ${where.join(' and ')}`, countB.params);
    const total = r.rows[0]?.n ?? 0;
    if (s.summaryCount) {
      return { bundle: bundleText(`${base}${selfQuery(s.kept)}`, [], warnings, total), returned: [], patients: s.patients, total };
    }
    return finishPage(q, req, s, await pageRows(q, req, s, where, visible, pageDescending(s)), base, warnings, total);
  }
  return finishPage(q, req, s, await pageRows(q, req, s, where, visible, pageDescending(s)), base, warnings, undefined);
}

/** Whether the page's statement reads the sort key descending: a `previous` cursor reads backwards. */
function pageDescending(s: ParsedSearch): boolean {
  return s.descending !== (s.cursor?.d === 'p');
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

/** The rows a page statement returned (one more than the page when there is a next), and whether rows break-glass could reveal were withheld. */
interface Page {
  rows: PageRow[];
  withheld: boolean;
}

/** ORDER BY and LIMIT of a page statement: the sort key, then id, and one row past the page. */
function pageOrder(s: ParsedSearch, desc: boolean): string {
  const dir = desc ? 'desc' : 'asc';
  return `order by t.${s.sort.column} ${dir}, t.id ${dir} limit ${s.count + 1}`;
}

/** A page of rows; `v` is false for a withheld row fetched by the first-page scan (its texts are null). */
interface ScanRow extends PageRow {
  v?: boolean;
}

function keysetAfter(b: SqlBuilder, column: string, desc: boolean, key: Date, id: string): string {
  return ` and (t.${column}, t.id) ${desc ? '<' : '>'} (${b.param(key)}::timestamptz, ${b.param(id)})`;
}

/** After a full first page with nothing withheld on it: is anything withheld further on? */
async function withheldPast(q: Queryable, req: SearchRequest, last: PageRow, onePatient: string | undefined, desc: boolean, now: Date): Promise<boolean> {
  const { def, principal, policy } = req;
  const s = parseSearch(req);
  const revealable = policy.revealableByBreakGlass?.(principal, 't', def.type as 'ImagingStudy', s.b, now, onePatient) as string;
  const past = await q.query<{ w: boolean }>(
    `select exists (select 1 from ${def.table} t where ${[...s.where, revealable].join(' and ')}${keysetAfter(s.b, s.sort.column, desc, last.sort_key, last.id as string)}) as w`,
    s.b.params,
  );
  return past.rows[0]?.w === true;
}

/**
 * The common case of a one-patient first page, when the policy offers a shortcut (`quickReach`):
 * one scan of the patient's rows within break-glass reach, with the texts of any row not certainly
 * visible nulled by PostgreSQL and without the deny-rule test. When every row is shown (the patient
 * has no Consent and no labelled pointer in reach), that is the page and nothing was withheld on
 * it; otherwise (undefined) the search goes on to the exact scan in `pageRows`. Binds into `s.b`.
 */
async function quickPage(q: Queryable, req: SearchRequest, s: ParsedSearch, onePatient: string, now: Date): Promise<Page | undefined> {
  const { def, principal, policy } = req;
  const quick = policy.quickReach?.(principal, 't', def.type as 'ImagingStudy', s.b, now, onePatient);
  if (quick === undefined) return undefined;
  const desc = pageDescending(s);
  const shownOnly = (column: string): string => `case when ${quick.shown} then t.${column} end as ${column}`;
  const cols = `t.id, t.version, ${shownOnly('resource')}, t.${s.sort.column} as sort_key, t.patient_nhs${s.includeEndpoint ? `, ${shownOnly('endpoint_ids')}` : ''}`;
  const sql = `select ${cols} from ${def.table} t where ${[...s.where, quick.reach].join(' and ')} ${pageOrder(s, desc)}`;
  const seen = (await q.query<PageRow>(sql, s.b.params)).rows;
  if (!seen.every((r) => r.resource !== null)) return undefined;
  if (seen.length <= s.count) return { rows: seen, withheld: false };
  return { rows: seen, withheld: await withheldPast(q, req, seen[seen.length - 1] as PageRow, onePatient, desc, now) };
}

/**
 * The page of rows the caller may see, and whether the same search withheld rows that
 * break-glass could reveal (the searchset's warning). Paths, cheapest first:
 * - nothing could be revealed (allow-all policy, break-glass caller, no patient): the page query;
 * - (a one-patient first page the quick scan could not settle, `quickPage`, comes here)
 * - a one-patient first page: one scan of the patient's rows within break-glass reach, each
 *   flagged with the sharing rules (`v`), the texts of withheld ones nulled by PostgreSQL. When the
 *   scan ends before the page is full, it has seen every row and answers both questions; otherwise
 *   a second statement fills the page (rows were withheld) or looks past it (none were, so far);
 * - otherwise: one statement with an uncorrelated EXISTS over the same filters beside the page
 *   (a LEFT JOIN LATERAL, so an empty page still answers).
 * The rules are in the SQL in every path, before LIMIT: a page never comes up short.
 */
async function pageRows(q: Queryable, req: SearchRequest, s: ParsedSearch, where: string[], visible: string | undefined, desc: boolean): Promise<Page> {
  const { def, principal, policy } = req;
  const { b, sort } = s;
  const now = req.now ?? new Date();
  const kind = def.type as 'ImagingStudy';
  const dir = desc ? 'desc' : 'asc';
  const order = pageOrder(s, desc);
  const cursorOf = (builder: SqlBuilder, parsed: ParsedSearch): string => {
    if (!parsed.cursor) return '';
    const k = new Date(parsed.cursor.k);
    if (Number.isNaN(k.getTime())) throw badRequest('_cursor is not a cursor this server issued', '_cursor');
    return keysetAfter(builder, sort.column, desc, k, parsed.cursor.i);
  };
  const cols = `t.id, t.version, t.resource, t.${sort.column} as sort_key${def.pointer ? ', t.patient_nhs' : ''}${s.includeEndpoint ? ', t.endpoint_ids' : ''}`;
  const onePatient = new Set(s.patients).size === 1 ? s.patients[0] : undefined;
  const mayReveal = visible !== undefined && s.patients.length > 0 && policy.breakGlassCouldReveal?.(principal) === true;
  if (!mayReveal) return { rows: (await q.query<PageRow>(`select ${cols} from ${def.table} t where ${where.join(' and ')}${cursorOf(b, s)} ${order}`, b.params)).rows, withheld: false };

  const reach = !s.cursor && onePatient !== undefined ? policy.reach?.(principal, 't', kind, b, now) : undefined;
  if (reach !== undefined) {
    const nulled = `i.id, i.version, case when i.v then i.resource end as resource, i.sort_key${def.pointer ? ', i.patient_nhs' : ''}${s.includeEndpoint ? ', case when i.v then i.endpoint_ids end as endpoint_ids' : ''}, i.v`;
    const scan = `select ${nulled} from (select ${cols}, ${visible} as v from ${def.table} t where ${[...s.where, reach].join(' and ')} ${order}) i order by i.sort_key ${dir}, i.id ${dir}`;
    const seen = (await q.query<ScanRow>(scan, b.params)).rows;
    const shown = seen.filter((r) => r.v === true);
    const withheld = shown.length < seen.length;
    if (seen.length <= s.count) return { rows: shown, withheld };
    if (withheld) {
      // Withheld rows took places on the page: fill it with visible ones, in a statement composed
      // afresh (every placeholder bound must appear in the SQL).
      const s2 = parseSearch(req);
      const visible2 = policy.visible(principal, 't', kind, s2.b, now, onePatient);
      return { rows: (await q.query<PageRow>(`select ${cols} from ${def.table} t where ${[...s2.where, visible2].join(' and ')} ${order}`, s2.b.params)).rows, withheld };
    }
    return { rows: shown, withheld: await withheldPast(q, req, seen[seen.length - 1] as ScanRow, onePatient, desc, now) };
  }
  const revealable = policy.revealableByBreakGlass?.(principal, 't', kind, b, now, onePatient) as string;
  const page = `select ${cols} from ${def.table} t where ${where.join(' and ')}${cursorOf(b, s)} ${order}`;
  const sql = `select p.*, w.withheld from (select exists (select 1 from ${def.table} t where ${[...s.where, revealable].join(' and ')}) as withheld) w
    left join lateral (${page}) p on true order by p.sort_key ${dir}, p.id ${dir}`;
  const rows = (await q.query<PageRow>(sql, b.params)).rows;
  return { rows, withheld: rows[0]?.withheld === true };
}

async function finishPage(
  q: Queryable,
  req: SearchRequest,
  s: ParsedSearch,
  r: Page,
  base: string,
  warnings: IssueDetail[],
  total: number | undefined,
): Promise<SearchResult> {
  const { def } = req;
  const { sort } = s;
  const backwards = s.cursor?.d === 'p';
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
  // A first page that holds every match knows the total without counting: it says so, as NRL
  // does. Withheld pointers are not among the rows, so they are not in it either.
  const known = total ?? (!s.cursor && !more ? rows.length : undefined);
  return {
    bundle: bundleText(links, entries, warnings, known),
    returned: rows.map((row) => ({ type: def.type, id: row.id, version: row.version, patient: row.patient_nhs })),
    patients: s.patients,
    total: known,
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
