import type { Principal } from '../access/principal';
import { badRequest } from '../fhir/errors';
import type { Queryable } from '../store/database';
import type { ResourceTypeDef } from './resource-types';
import type { ExistingRow } from './write-rules';

/**
 * Conditional create/update (R4 §3.1.0.8, §3.1.0.6.1) keyed on `identifier` (or `_id`). For
 * pointers the match is scoped to the caller's own organisation: the same study may be held by
 * two trusts, and one trust's condition must never select (or reveal) the other's pointer.
 *
 * A condition is parsed into AND-ed groups of OR-ed alternatives; every condition of a Bundle
 * is answered by one statement per resource type (DESIGN: never one round trip per entry).
 */
export interface Condition {
  /** Each group must match (AND); within a group any alternative (OR). */
  groups: { tokens: string[]; ids: string[] }[];
}

const CONDITIONAL_PARAMS = new Set(['identifier', '_id']);
const ID = /^[A-Za-z0-9\-.]{1,64}$/;

export function parseCondition(def: ResourceTypeDef, query: string): Condition {
  const params = new URLSearchParams(query.replace(/^.*\?/, ''));
  const groups: Condition['groups'] = [];
  for (const [name, value] of params) {
    if (!CONDITIONAL_PARAMS.has(name)) throw badRequest(`conditional operations on ${def.type} accept only identifier or _id, not ${name}`, name);
    const values = value.split(',').map((v) => v.trim());
    if (values.some((v) => v === '' || v === '|')) throw badRequest(`the condition's ${name} has an empty value`, name);
    if (name === '_id') {
      if (!values.every((v) => ID.test(v))) throw badRequest('the condition\'s _id is not a FHIR id', name);
      groups.push({ tokens: [], ids: values });
    } else {
      if (values.some((v) => v.endsWith('|'))) throw badRequest('a conditional identifier needs a value, not only a system', name);
      groups.push({ tokens: values, ids: [] });
    }
  }
  if (groups.length === 0) throw badRequest(`a conditional ${def.type} request needs identifier=<system|value>`, 'identifier');
  return { groups };
}

interface CandidateRow extends ExistingRow {
  identifiers: string[];
}

function matches(row: CandidateRow, c: Condition): boolean {
  return c.groups.every((g) => g.ids.includes(row.id) || g.tokens.some((t) => row.identifiers.includes(t)));
}

/** The rows each condition matches (same order as `conditions`), locked for update, with one query. */
export async function findConditionalMatches(tx: Queryable, def: ResourceTypeDef, principal: Principal, conditions: readonly Condition[]): Promise<ExistingRow[][]> {
  const tokens = [...new Set(conditions.flatMap((c) => c.groups.flatMap((g) => g.tokens)))];
  const ids = [...new Set(conditions.flatMap((c) => c.groups.flatMap((g) => g.ids)))];
  const scope = def.pointer ? ' and t.custodian_ods = $3' : '';
  const columns = def.pointer ? 't.patient_nhs, t.custodian_ods' : 'null as patient_nhs, null as custodian_ods';
  const rows = await tx.query<CandidateRow>(
    `select t.id, t.version, t.resource, t.identifiers, ${columns} from ${def.table} t
      where (t.identifiers && $1::text[] or t.id = any($2::text[]))${scope} for update`,
    def.pointer ? [tokens, ids, principal.organization] : [tokens, ids],
  );
  return conditions.map((c) =>
    rows.rows.filter((r) => matches(r, c)).map(({ id, version, resource, patient_nhs, custodian_ods }) => ({ id, version, resource, patient_nhs, custodian_ods })),
  );
}
