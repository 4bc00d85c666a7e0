import type { Queryable } from '../store/database';
import type { OrganizationKind } from '../registry/organization';
import { CATEGORY_REPORT, CATEGORY_STUDY } from '../registry/codes';
import { ODS_CODE } from '../registry/nhs-identifier';
import { textArrayLiteral } from '../store/sql-builder';
import type { Agreement } from './policy-rules';
import { DIRECT_CARE } from './policy-rules';

/**
 * The small, slowly changing facts the sharing policy needs about organisations: each one's kind
 * (network member or not) and the sharing agreements. Held in memory and refreshed on a timer and
 * after this node writes an Organization, so that a patient search does not look them up row by
 * row. Consents are per patient and stay in the SQL, always current.
 */
export interface DirectorySnapshot {
  kinds: ReadonlyMap<string, OrganizationKind>;
  agreements: readonly Agreement[];
  loadedAt: number;
}

export async function loadDirectory(q: Queryable): Promise<DirectorySnapshot> {
  const orgs = await q.query<{ ods: string; kind: OrganizationKind }>('select ods, kind from organization');
  const agreements = await q.query<{ provider_ods: string; recipient_ods: string; categories: string[]; period_start: Date; period_end: Date | null }>(
    'select provider_ods, recipient_ods, categories, period_start, period_end from sharing_agreement',
  );
  return {
    kinds: new Map(orgs.rows.map((o) => [o.ods, o.kind])),
    agreements: agreements.rows.map((a) => ({ provider: a.provider_ods, recipient: a.recipient_ods, categories: a.categories, start: a.period_start, end: a.period_end })),
    loadedAt: Date.now(),
  };
}

function active(a: Agreement, now: Date): boolean {
  return a.start <= now && (a.end === null || a.end > now);
}

/** What one caller may see, worked out once per query from the snapshot. */
export interface CallerScope {
  /** Custodians whose study pointers the caller sees (network sharing or an active agreement). */
  sharedStudy: string[];
  /** Custodians whose report pointers the caller sees. */
  sharedReport: string[];
  /** Custodians the caller has any relationship with (break-glass reach). */
  related: string[];
  /** The same lists as PostgreSQL array literals, made once, bound as `$n::text[]`. */
  literals: { sharedStudy: string; sharedReport: string; related: string };
  /**
   * The same lists as SQL constants (`'{"RRK","RJE"}'::text[]`), when every code in them is a
   * well-formed ODS code (capital letters and digits, so nothing in them can end the literal):
   * PostgreSQL tests a row against a constant list of 9 or more through a hash table built once
   * per statement, where a bound list is walked element by element for every row (about 15,000
   * fewer instructions per patient search with 15 trusts, callgrind). The statement text then
   * differs per list, which is per caller scope: a few prepared statements per connection (at most
   * `MAX_CONSTANT_LISTS` lists per process).
   */
  constants: { sharedStudy: string; sharedReport: string; related: string } | undefined;
  /** Every custodian in `related` is in the shared list too: within break-glass reach, only labels and consents withhold. */
  sharedCoversRelated: { study: boolean; report: boolean };
}

/**
 * Distinct constant lists this process hands out, at most. Each distinct list is another prepared
 * statement on every pooled connection, kept for the connection's life (as long as the process):
 * a network has a few (callers with the same agreements share them), but thousands of
 * organisations each with its own agreements would fill the backends' memory. Past this many,
 * lists are bound as parameters again.
 */
export const MAX_CONSTANT_LISTS = 64;

const constantLists = new Set<string>();

/** How many distinct constant lists this process has handed out. */
export function constantListsIssued(): number {
  return constantLists.size;
}

/** The lists as SQL constants, or undefined when any code in them is not an ODS code, or the process has handed out its fill of lists (see `CallerScope.constants`). */
function sqlConstants(lists: { sharedStudy: string[]; sharedReport: string[]; related: string[] }): CallerScope['constants'] {
  const all = [...lists.sharedStudy, ...lists.sharedReport, ...lists.related];
  if (!all.every((ods) => ODS_CODE.test(ods))) return undefined;
  const constant = (values: string[]): string => `'${textArrayLiteral(values)}'::text[]`;
  const out = { sharedStudy: constant(lists.sharedStudy), sharedReport: constant(lists.sharedReport), related: constant(lists.related) };
  const fresh = new Set([out.sharedStudy, out.sharedReport, out.related].filter((t) => !constantLists.has(t)));
  if (constantLists.size + fresh.size > MAX_CONSTANT_LISTS) return undefined;
  for (const t of fresh) constantLists.add(t);
  return out;
}

export function callerScope(d: DirectorySnapshot, org: string, purposeOfUse: string, now: Date): CallerScope {
  let byCaller = scopes.get(d);
  if (!byCaller) {
    byCaller = new Map();
    scopes.set(d, byCaller);
  }
  let byPurpose = byCaller.get(org);
  if (!byPurpose) {
    byPurpose = new Map();
    byCaller.set(org, byPurpose);
  }
  const hit = byPurpose.get(purposeOfUse);
  if (hit && now >= hit.from && now < hit.until) return hit.scope;
  const scope = workOutScope(d, org, purposeOfUse, now);
  // A scope holds until the next agreement of this caller starts or ends (or the snapshot is replaced).
  const changes = d.agreements.filter((a) => a.recipient === org).flatMap((a) => [a.start, a.end]).filter((t): t is Date => t !== null);
  const from = new Date(Math.max(0, ...changes.filter((t) => t <= now).map((t) => t.getTime())));
  const until = new Date(Math.min(8.64e15, ...changes.filter((t) => t > now).map((t) => t.getTime())));
  byPurpose.set(purposeOfUse, { scope, from, until });
  return scope;
}

/** Scopes worked out per snapshot and caller: the same few callers ask thousands of times a second. */
const scopes = new WeakMap<DirectorySnapshot, Map<string, Map<string, { scope: CallerScope; from: Date; until: Date }>>>();

function workOutScope(d: DirectorySnapshot, org: string, purposeOfUse: string, now: Date): CallerScope {
  const member = d.kinds.get(org) === 'network-trust';
  const network = member ? [...d.kinds].filter(([, k]) => k === 'network-trust').map(([ods]) => ods) : [];
  const mine = d.agreements.filter((a) => a.recipient === org);
  const agreed = (category: string): string[] => mine.filter((a) => active(a, now) && (a.categories.length === 0 || a.categories.includes(category))).map((a) => a.provider);
  const viaNetwork = DIRECT_CARE.has(purposeOfUse) ? network : [];
  const unique = (xs: string[]): string[] => [...new Set(xs)].sort();
  const sharedStudy = unique([...viaNetwork, ...agreed(CATEGORY_STUDY)]);
  const sharedReport = unique([...viaNetwork, ...agreed(CATEGORY_REPORT)]);
  const related = unique([...network, ...mine.map((a) => a.provider)]);
  const covers = (shared: string[]): boolean => related.every((ods) => shared.includes(ods));
  return {
    sharedStudy,
    sharedReport,
    related,
    literals: { sharedStudy: textArrayLiteral(sharedStudy), sharedReport: textArrayLiteral(sharedReport), related: textArrayLiteral(related) },
    constants: sqlConstants({ sharedStudy, sharedReport, related }),
    sharedCoversRelated: { study: covers(sharedStudy), report: covers(sharedReport) },
  };
}
