import type { Queryable } from '../store/database';
import type { OrganizationKind } from '../registry/organization';
import type { Agreement } from './policy-rules';

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
}

export function callerScope(d: DirectorySnapshot, org: string, purposeOfUse: string, now: Date, directCare: ReadonlySet<string>, study: string, report: string): CallerScope {
  const member = d.kinds.get(org) === 'network-trust';
  const network = member ? [...d.kinds].filter(([, k]) => k === 'network-trust').map(([ods]) => ods) : [];
  const mine = d.agreements.filter((a) => a.recipient === org);
  const agreed = (category: string): string[] => mine.filter((a) => active(a, now) && (a.categories.length === 0 || a.categories.includes(category))).map((a) => a.provider);
  const viaNetwork = directCare.has(purposeOfUse) ? network : [];
  const unique = (xs: string[]): string[] => [...new Set(xs)].sort();
  return {
    sharedStudy: unique([...viaNetwork, ...agreed(study)]),
    sharedReport: unique([...viaNetwork, ...agreed(report)]),
    related: unique([...network, ...mine.map((a) => a.provider)]),
  };
}
