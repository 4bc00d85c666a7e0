import { CATEGORY_REPORT, CATEGORY_STUDY, SNOMED_SYSTEM } from '../registry/codes';
import type { Database } from '../store/database';
import type { DirectorySnapshot } from './policy-directory';
import { callerScope, loadDirectory } from './policy-directory';
import type { SqlBuilder } from '../store/sql-builder';
import type { PointerPolicy } from './policy';
import type { Principal } from './principal';
import { isBreakGlass } from './principal';
import { RESTRICTED_LABELS } from './policy-rules';

type Kind = 'ImagingStudy' | 'DocumentReference';

/** The pointer's NRL category: an ImagingStudy is the study itself; a DocumentReference says. */
function categoryOf(alias: string, kind: Kind): string {
  return kind === 'ImagingStudy'
    ? `'${CATEGORY_STUDY}'`
    : `(case when ${alias}.categories @> array['${SNOMED_SYSTEM}|${CATEGORY_REPORT}'] then '${CATEGORY_REPORT}' else '${CATEGORY_STUDY}' end)`;
}

/**
 * The values a predicate refers to, as named slots. Predicates are compiled once per shape (which
 * rule, table kind, alias, break-glass or not, pinned to a patient or not) into a template with
 * these slots, and each query fills the slots with placeholders (`fill`): building the SQL text
 * costs a replace, not a compile.
 */
type Slot = 'org' | 'now' | 'purpose' | 'patient' | 'sharedStudy' | 'sharedReport' | 'related';

interface Bound {
  org: string;
  now: string;
  purpose: string;
  /** The one patient the query is pinned to, when the caller said so (see `PointerPolicy.visible`). */
  patient?: string;
  sharedStudy: string;
  sharedReport: string;
  related: string;
}

const slot = (name: Slot): string => `\u0000${name}\u0000`;

function slots(pinned: boolean): Bound {
  return {
    org: slot('org'),
    now: slot('now'),
    purpose: slot('purpose'),
    patient: pinned ? slot('patient') : undefined,
    sharedStudy: slot('sharedStudy'),
    sharedReport: slot('sharedReport'),
    related: slot('related'),
  };
}

/** A compiled predicate: SQL text between slots, and the slot at each gap. */
interface Template {
  parts: string[];
  names: Slot[];
}

function compileTemplate(text: string): Template {
  const pieces = text.split('\u0000');
  // split gives text, name, text, name, ..., text
  return { parts: pieces.filter((_, k) => k % 2 === 0), names: pieces.filter((_, k) => k % 2 === 1) as Slot[] };
}

/**
 * Binds each slot the template uses, once per statement however often it appears (SqlBuilder.text);
 * slots it does not use are not bound (PostgreSQL cannot type a placeholder the SQL never uses).
 */
function fill(t: Template, b: SqlBuilder, principal: Principal, now: Date, patient: string | undefined, snapshot: DirectorySnapshot | undefined): string {
  const bound: Partial<Record<Slot, string>> = {};
  const placeholder = (name: Slot): string => {
    switch (name) {
      case 'org': return b.text(principal.organization);
      case 'now': return b.text(now.toISOString(), 'timestamptz');
      case 'purpose': return b.text(principal.purposeOfUse);
      case 'patient': return b.text(patient as string);
      default: {
        const scope = callerScope(snapshot as DirectorySnapshot, principal.organization, principal.purposeOfUse, now);
        return scope.constants?.[name] ?? b.text(scope.literals[name], 'text[]');
      }
    }
  };
  let out = t.parts[0] as string;
  for (let k = 0; k < t.names.length; k++) {
    const name = t.names[k] as Slot;
    out += (bound[name] ??= placeholder(name)) + (t.parts[k + 1] as string);
  }
  return out;
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
 * A patient's active deny rules that cover this caller and this pointer's category: a probe of the
 * consent index, with the rules of any consent found tested by `consent_rules_deny` (migration
 * 009), which keeps the rule tests out of the search's plan.
 *
 * When the query is pinned to one patient, the check depends on the row only through its
 * category, so it is written uncorrelated, once per category: PostgreSQL runs each as an InitPlan,
 * one probe per query instead of one per row. Otherwise it is a correlated scalar subquery, so
 * that PostgreSQL probes the index for each candidate row's patient (a correlated EXISTS under OR
 * may be planned as a hash over every active consent in the table).
 */
function consentDenied(alias: string, kind: Kind, v: Bound): string {
  const patient = v.patient;
  const covers = (category: string): string => `c.status = 'active' and consent_rules_deny(c.rules, ${v.org}, ${category}, ${v.now})`;
  if (patient === undefined) {
    return `coalesce((select true from consent c where c.patient_nhs = ${alias}.patient_nhs and ${covers(categoryOf(alias, kind))} limit 1), false)`;
  }
  const denied = (category: string): string => `exists (select 1 from consent c where c.patient_nhs = ${patient} and ${covers(`'${category}'`)})`;
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
function withSnapshot(alias: string, kind: Kind, want: Want, breakGlass: boolean, v: Bound): string {
  const related = `${alias}.custodian_ods = any(${v.related})`;
  if (breakGlass) return `(${alias}.custodian_ods = ${v.org} or ${related})`;
  const shared =
    kind === 'ImagingStudy'
      ? `${alias}.custodian_ods = any(${v.sharedStudy})`
      : `(case when ${alias}.categories @> array['${SNOMED_SYSTEM}|${CATEGORY_REPORT}'] then ${alias}.custodian_ods = any(${v.sharedReport}) else ${alias}.custodian_ods = any(${v.sharedStudy}) end)`;
  const permitted = `(${shared} and not ${restrictedOrDenied(alias, kind, v)})`;
  return want === 'visible' ? `(${alias}.custodian_ods = ${v.org} or ${permitted})` : `(${alias}.custodian_ods <> ${v.org} and ${related} and not ${permitted})`;
}

/**
 * Rows within break-glass reach that are certainly visible, for a caller whose shared lists hold
 * every related custodian (see `quickReach`): the caller's own, or ones with no restricted label
 * of a patient with no active Consent at all. A presence probe of the consent index costs less
 * than the deny-rule test (no rule function in the plan); a patient with any Consent, or a
 * labelled pointer, leaves a row unshown here and sends the search to the exact scan.
 */
function shownInReach(alias: string, v: Bound): string {
  const restricted = `${alias}.security && array['${RESTRICTED_LABELS.join("','")}']::text[]`;
  return `(${alias}.custodian_ods = ${v.org} or not ((${restricted}) or exists (select 1 from consent c where c.patient_nhs = ${v.patient as string} and c.status = 'active')))`;
}

/** Without a snapshot (before the first load): organisation kinds and agreements looked up in the SQL. */
function inSql(alias: string, kind: Kind, want: Want, breakGlass: boolean, v: Bound): string {
  if (breakGlass) return `(${alias}.custodian_ods = ${v.org} or ${related(alias, v)})`;
  if (want === 'visible') return `(${alias}.custodian_ods = ${v.org} or ${permittedWithoutBreakGlass(alias, kind, v)})`;
  return `(${alias}.custodian_ods <> ${v.org} and ${related(alias, v)} and not ${permittedWithoutBreakGlass(alias, kind, v)})`;
}

type Want = 'visible' | 'revealable' | 'shown';

/** Templates by alias, then by the shape's choices as bits. */
const templates = new Map<string, Template[]>();

function template(form: 'snapshot' | 'sql', alias: string, kind: Kind, want: Want, breakGlass: boolean, pinned: boolean): Template {
  let byShape = templates.get(alias);
  if (byShape === undefined) {
    byShape = [];
    templates.set(alias, byShape);
  }
  const shape = (form === 'snapshot' ? 1 : 0) | (kind === 'ImagingStudy' ? 2 : 0) | (want === 'visible' ? 4 : 0) | (breakGlass ? 8 : 0) | (pinned ? 16 : 0) | (want === 'shown' ? 32 : 0);
  const compose = (): string => (want === 'shown' ? shownInReach(alias, slots(true)) : (form === 'snapshot' ? withSnapshot : inSql)(alias, kind, want, breakGlass, slots(pinned)));
  return (byShape[shape] ??= compileTemplate(compose()));
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
      const t = template(snapshot ? 'snapshot' : 'sql', alias, kind, 'visible', isBreakGlass(principal), patient !== undefined);
      return fill(t, b, principal, now, patient, snapshot);
    },
    reach(principal: Principal, alias: string, kind: Kind, b: SqlBuilder, now: Date): string {
      return fill(template(snapshot ? 'snapshot' : 'sql', alias, kind, 'visible', true, false), b, principal, now, undefined, snapshot);
    },
    quickReach(principal: Principal, alias: string, kind: Kind, b: SqlBuilder, now: Date, patient: string): { reach: string; shown: string } | undefined {
      if (!snapshot || isBreakGlass(principal)) return undefined;
      const scope = callerScope(snapshot, principal.organization, principal.purposeOfUse, now);
      const covers = scope.sharedCoversRelated;
      if (!covers.study || (kind === 'DocumentReference' && !covers.report)) return undefined;
      // A network trust is in its own related list: then the list alone is the reach.
      const related = scope.related.includes(principal.organization) ? scope.constants?.related : undefined;
      return {
        reach: related !== undefined ? `${alias}.custodian_ods = any(${related})` : fill(template('snapshot', alias, kind, 'visible', true, false), b, principal, now, undefined, snapshot),
        shown: fill(template('snapshot', alias, kind, 'shown', false, true), b, principal, now, patient, snapshot),
      };
    },
    breakGlassCouldReveal(principal: Principal): boolean {
      return !isBreakGlass(principal);
    },
    revealableByBreakGlass(principal: Principal, alias: string, kind: Kind, b: SqlBuilder, now: Date, patient?: string): string | undefined {
      if (isBreakGlass(principal)) return undefined;
      return fill(template(snapshot ? 'snapshot' : 'sql', alias, kind, 'revealable', false, patient !== undefined), b, principal, now, patient, snapshot);
    },
  };
}
