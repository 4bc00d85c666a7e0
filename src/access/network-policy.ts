import { CATEGORY_REPORT, CATEGORY_STUDY, SNOMED_SYSTEM } from '../registry/codes';
import type { Database } from '../store/database';
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

function permittedWithoutBreakGlass(alias: string, kind: Kind, v: Bound): string {
  const cat = categoryOf(alias, kind);
  const agreed = `exists (select 1 from sharing_agreement a where a.provider_ods = ${alias}.custodian_ods and a.recipient_ods = ${v.org}
      and a.period_start <= ${v.now} and (a.period_end is null or a.period_end > ${v.now})
      and (cardinality(a.categories) = 0 or ${cat} = any(a.categories)))`;
  const restricted = `${alias}.security && array['${RESTRICTED_LABELS.join("','")}']::text[]`;
  const denied = `exists (select 1 from consent c cross join lateral jsonb_array_elements(c.rules) r
      where c.patient_nhs = ${alias}.patient_nhs and c.status = 'active'
        and (r->>'start' is null or (r->>'start')::timestamptz <= ${v.now})
        and (r->>'end' is null or (r->>'end')::timestamptz > ${v.now})
        and (jsonb_array_length(r->'orgs') = 0 or r->'orgs' ? ${v.org})
        and (jsonb_array_length(r->'categories') = 0 or r->'categories' ? ${cat}))`;
  return `((${network(alias, v)} or ${agreed}) and not (${restricted}) and not ${denied})`;
}

/**
 * The network's sharing policy compiled into SQL (same rules as `decide` in policy-rules.ts).
 * It is a predicate on the pointer row, applied inside the query before ORDER BY / LIMIT, so
 * pages keep their size and withheld pointers leave no trace.
 */
export function networkPolicy(_db?: Database): PointerPolicy {
  return {
    visible(principal: Principal, alias: string, kind: Kind, b: SqlBuilder, now: Date): string {
      const v = bind(principal, b, now);
      if (isBreakGlass(principal)) return `(${alias}.custodian_ods = ${v.org} or ${related(alias, v)})`;
      return `(${alias}.custodian_ods = ${v.org} or ${permittedWithoutBreakGlass(alias, kind, v)})`;
    },
    revealableByBreakGlass(principal: Principal, alias: string, kind: Kind, b: SqlBuilder, now: Date): string | undefined {
      if (isBreakGlass(principal)) return undefined;
      const v = bind(principal, b, now);
      return `(${alias}.custodian_ods <> ${v.org} and ${related(alias, v)} and not ${permittedWithoutBreakGlass(alias, kind, v)})`;
    },
  };
}
