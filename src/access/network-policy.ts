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
  /** The one patient the query is pinned to, when the caller said so (see `PointerPolicy.visible`). */
  patient?: string;
}

/**
 * Placeholders bound on first use only (PostgreSQL cannot type a parameter the SQL never uses), and
 * once per statement however many predicates repeat them (SqlBuilder.text).
 */
function bind(principal: Principal, b: SqlBuilder, now: Date, patient?: string): Bound {
  return {
    get org() { return b.text(principal.organization); },
    get now() { return b.text(now.toISOString(), 'timestamptz'); },
    get purpose() { return b.text(principal.purposeOfUse); },
    get patient() { return patient === undefined ? undefined : b.text(patient); },
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
 * A patient's active deny rules that cover this caller and this pointer's category: the SQL
 * function `consent_denies` (migration 009), which keeps the rule tests out of the search's plan.
 *
 * When the query is pinned to one patient, the check depends on the row only through its
 * category, so it is written uncorrelated, once per category: PostgreSQL runs each as an InitPlan,
 * one consent probe per query instead of one per row. Otherwise it is called per candidate row with
 * that row's patient, an index probe each.
 */
function consentDenied(alias: string, kind: Kind, v: Bound): string {
  const patient = v.patient;
  if (patient === undefined) return `consent_denies(${alias}.patient_nhs, ${v.org}, ${categoryOf(alias, kind)}, ${v.now})`;
  const denied = (category: string): string => `(select consent_denies(${patient}, ${v.org}, '${category}', ${v.now}))`;
  return kind === 'ImagingStudy'
    ? denied(CATEGORY_STUDY)
    : `(case when ${alias}.categories @> array['${SNOMED_SYSTEM}|${CATEGORY_REPORT}'] then ${denied(CATEGORY_REPORT)} else ${denied(CATEGORY_STUDY)} end)`;
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
function compiledWithSnapshot(d: DirectorySnapshot, principal: Principal, alias: string, kind: Kind, b: SqlBuilder, now: Date, want: 'visible' | 'revealable', patient: string | undefined): string {
  // Only what the wanted predicate uses is bound: PostgreSQL cannot type unused placeholders.
  const v = bind(principal, b, now, patient);
  const scope = callerScope(d, principal.organization, principal.purposeOfUse, now).literals;
  const related = (): string => `${alias}.custodian_ods = any(${b.text(scope.related, 'text[]')})`;
  if (isBreakGlass(principal)) return `(${alias}.custodian_ods = ${v.org} or ${related()})`;
  const shared =
    kind === 'ImagingStudy'
      ? `${alias}.custodian_ods = any(${b.text(scope.sharedStudy, 'text[]')})`
      : `(case when ${alias}.categories @> array['${SNOMED_SYSTEM}|${CATEGORY_REPORT}'] then ${alias}.custodian_ods = any(${b.text(scope.sharedReport, 'text[]')}) else ${alias}.custodian_ods = any(${b.text(scope.sharedStudy, 'text[]')}) end)`;
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
    visible(principal: Principal, alias: string, kind: Kind, b: SqlBuilder, now: Date, patient?: string): string {
      if (snapshot) return compiledWithSnapshot(snapshot, principal, alias, kind, b, now, 'visible', patient);
      const v = bind(principal, b, now, patient);
      if (isBreakGlass(principal)) return `(${alias}.custodian_ods = ${v.org} or ${related(alias, v)})`;
      return `(${alias}.custodian_ods = ${v.org} or ${permittedWithoutBreakGlass(alias, kind, v)})`;
    },
    reach(principal: Principal, alias: string, kind: Kind, b: SqlBuilder, now: Date): string {
      const breakGlass: Principal = { ...principal, purposeOfUse: 'ETREAT', breakGlassReason: principal.breakGlassReason ?? 'reach of break-glass' };
      return this.visible(breakGlass, alias, kind, b, now);
    },
    revealableByBreakGlass(principal: Principal, alias: string, kind: Kind, b: SqlBuilder, now: Date, patient?: string): string | undefined {
      if (isBreakGlass(principal)) return undefined;
      if (snapshot) return compiledWithSnapshot(snapshot, principal, alias, kind, b, now, 'revealable', patient);
      const v = bind(principal, b, now, patient);
      return `(${alias}.custodian_ods <> ${v.org} and ${related(alias, v)} and not ${permittedWithoutBreakGlass(alias, kind, v)})`;
    },
  };
}
