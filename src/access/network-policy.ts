import { CATEGORY_REPORT, CATEGORY_STUDY, SNOMED_SYSTEM } from '../registry/codes';
import type { Database } from '../store/database';
import type { DirectorySnapshot } from './policy-directory';
import { callerScope, loadDirectory } from './policy-directory';
import type { SqlBuilder } from '../store/sql-builder';
import type { PointerPolicy } from './policy';
import type { Principal } from './principal';
import { isBreakGlass } from './principal';
import { DIRECT_CARE, RESTRICTED_LABELS } from './policy-rules';

type Kind = 'ImagingStudy' | 'DocumentReference';

/** The pointer's NRL category: an ImagingStudy is the study itself; a DocumentReference says. */
function categoryOf(alias: string, kind: Kind): string {
  return kind === 'ImagingStudy'
    ? `'${CATEGORY_STUDY}'`
    : `(case when ${alias}.categories @> array['${SNOMED_SYSTEM}|${CATEGORY_REPORT}'] then '${CATEGORY_REPORT}' else '${CATEGORY_STUDY}' end)`;
}

interface Bound {
  org: string;
  now: string;
  purpose: string;
}

/** Placeholders bound on first use only: PostgreSQL cannot type a parameter the SQL never uses. */
function bind(principal: Principal, b: SqlBuilder, now: Date): Bound {
  const memo = new Map<string, string>();
  const once = (key: string, make: () => string): string => memo.get(key) ?? (memo.set(key, make()).get(key) as string);
  return {
    get org() { return once('org', () => `${b.param(principal.organization)}::text`); },
    get now() { return once('now', () => `${b.param(now)}::timestamptz`); },
    get purpose() { return once('purpose', () => `${b.param(principal.purposeOfUse)}::text`); },
  };
}

function network(alias: string, v: Bound): string {
  return `(${v.purpose} in ('TREAT', 'ETREAT')
    and exists (select 1 from organization po where po.ods = ${v.org} and po.kind = 'network-trust')
    and exists (select 1 from organization co where co.ods = ${alias}.custodian_ods and co.kind = 'network-trust'))`;
}

function related(alias: string, v: Bound): string {
  return `((exists (select 1 from organization po where po.ods = ${v.org} and po.kind = 'network-trust')
      and exists (select 1 from organization co where co.ods = ${alias}.custodian_ods and co.kind = 'network-trust'))
    or exists (select 1 from sharing_agreement sa where sa.provider_ods = ${alias}.custodian_ods and sa.recipient_ods = ${v.org}))`;
}

/**
 * A patient's active deny rules that cover this caller and this pointer's category. Written as a
 * correlated scalar subquery so that PostgreSQL probes the consent index for each candidate row's
 * patient; an EXISTS under OR would be planned as a hash over every active consent in the table.
 */
function consentDenied(alias: string, kind: Kind, v: Bound): string {
  const cat = categoryOf(alias, kind);
  return `coalesce((select true from consent c cross join lateral jsonb_array_elements(c.rules) r
      where c.patient_nhs = ${alias}.patient_nhs and c.status = 'active'
        and (r->>'start' is null or (r->>'start')::timestamptz <= ${v.now})
        and (r->>'end' is null or (r->>'end')::timestamptz > ${v.now})
        and (jsonb_array_length(r->'orgs') = 0 or r->'orgs' ? ${v.org})
        and (jsonb_array_length(r->'categories') = 0 or r->'categories' ? ${cat})
      limit 1), false)`;
}

function permittedWithoutBreakGlass(alias: string, kind: Kind, v: Bound): string {
  const cat = categoryOf(alias, kind);
  const agreed = `exists (select 1 from sharing_agreement a where a.provider_ods = ${alias}.custodian_ods and a.recipient_ods = ${v.org}
      and a.period_start <= ${v.now} and (a.period_end is null or a.period_end > ${v.now})
      and (cardinality(a.categories) = 0 or ${cat} = any(a.categories)))`;
  return `((${network(alias, v)} or ${agreed}) and not ${restrictedOrDenied(alias, kind, v)})`;
}

/** Rules 4 and 5: a restricted label, or a patient's deny rule covering this caller. */
function restrictedOrDenied(alias: string, kind: Kind, v: Bound): string {
  const restricted = `${alias}.security && array['${RESTRICTED_LABELS.join("','")}']::text[]`;
  return `((${restricted}) or ${consentDenied(alias, kind, v)})`;
}

/**
 * The same rules with the directory snapshot: organisation kinds and agreements become lists of
 * custodians bound as parameters, so the predicate is a few array tests plus the consent check.
 */
function compiledWithSnapshot(d: DirectorySnapshot, principal: Principal, alias: string, kind: Kind, b: SqlBuilder, now: Date, want: 'visible' | 'revealable'): string {
  // Only what the wanted predicate uses is bound: PostgreSQL cannot type unused placeholders.
  const v = bind(principal, b, now);
  const scope = callerScope(d, principal.organization, principal.purposeOfUse, now, DIRECT_CARE, CATEGORY_STUDY, CATEGORY_REPORT);
  const related = (): string => `${alias}.custodian_ods = any(${b.param(scope.related)}::text[])`;
  if (isBreakGlass(principal)) return `(${alias}.custodian_ods = ${v.org} or ${related()})`;
  const shared =
    kind === 'ImagingStudy'
      ? `${alias}.custodian_ods = any(${b.param(scope.sharedStudy)}::text[])`
      : `(case when ${alias}.categories @> array['${SNOMED_SYSTEM}|${CATEGORY_REPORT}'] then ${alias}.custodian_ods = any(${b.param(scope.sharedReport)}::text[]) else ${alias}.custodian_ods = any(${b.param(scope.sharedStudy)}::text[]) end)`;
  const permitted = `(${shared} and not ${restrictedOrDenied(alias, kind, v)})`;
  return want === 'visible' ? `(${alias}.custodian_ods = ${v.org} or ${permitted})` : `(${alias}.custodian_ods <> ${v.org} and ${related()} and not ${permitted})`;
}

export interface NetworkPolicy extends PointerPolicy {
  /** Reloads organisation kinds and agreements now (after an Organization write, or in tests). */
  refresh(): Promise<void>;
  close(): void;
}

/**
 * The network's sharing policy compiled into SQL (same rules as `decide` in policy-rules.ts).
 * It is a predicate on the pointer row, applied inside the query before ORDER BY / LIMIT, so
 * pages keep their size and withheld pointers leave no trace. With a database it keeps a
 * directory snapshot (refreshed every `refreshMs`, and on `refresh()`); without one, or before
 * the first load, organisation kinds and agreements are looked up in the SQL itself.
 */
export function networkPolicy(db?: Database, options: { refreshMs?: number } = {}): NetworkPolicy {
  let snapshot: DirectorySnapshot | undefined;
  let timer: NodeJS.Timeout | undefined;
  const refresh = async (): Promise<void> => {
    if (db) snapshot = await loadDirectory(db);
  };
  if (db && (options.refreshMs ?? 5000) > 0) {
    timer = setInterval(() => {
      refresh().catch(() => {
        // Keep the last snapshot; the next tick tries again. A store outage fails the queries themselves.
      });
    }, options.refreshMs ?? 5000);
    timer.unref();
  }
  return {
    refresh,
    close() {
      if (timer) clearInterval(timer);
    },
    visible(principal: Principal, alias: string, kind: Kind, b: SqlBuilder, now: Date): string {
      if (snapshot) return compiledWithSnapshot(snapshot, principal, alias, kind, b, now, 'visible');
      const v = bind(principal, b, now);
      if (isBreakGlass(principal)) return `(${alias}.custodian_ods = ${v.org} or ${related(alias, v)})`;
      return `(${alias}.custodian_ods = ${v.org} or ${permittedWithoutBreakGlass(alias, kind, v)})`;
    },
    reach(principal: Principal, alias: string, kind: Kind, b: SqlBuilder, now: Date): string {
      const breakGlass: Principal = { ...principal, purposeOfUse: 'ETREAT', breakGlassReason: principal.breakGlassReason ?? 'reach of break-glass' };
      return this.visible(breakGlass, alias, kind, b, now);
    },
    revealableByBreakGlass(principal: Principal, alias: string, kind: Kind, b: SqlBuilder, now: Date): string | undefined {
      if (isBreakGlass(principal)) return undefined;
      if (snapshot) return compiledWithSnapshot(snapshot, principal, alias, kind, b, now, 'revealable');
      const v = bind(principal, b, now);
      return `(${alias}.custodian_ods <> ${v.org} and ${related(alias, v)} and not ${permittedWithoutBreakGlass(alias, kind, v)})`;
    },
  };
}
