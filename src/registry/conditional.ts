import type { Principal } from '../access/principal';
import { badRequest } from '../fhir/errors';
import type { Queryable } from '../store/database';
import { SqlBuilder } from '../store/sql-builder';
import type { ResourceTypeDef } from './resource-types';
import type { ExistingRow } from './write-rules';

const CONDITIONAL_PARAMS = new Set(['identifier', '_id']);

/**
 * Conditional create/update (R4 §3.1.0.8, §3.1.0.6.1) keyed on `identifier` (or `_id`). For
 * pointers the match is scoped to the caller's own organisation: the same study may be held by
 * two trusts, and one trust's condition must never select (or reveal) the other's pointer.
 */
export function parseConditional(def: ResourceTypeDef, query: string, principal: Principal): { find(tx: Queryable): Promise<ExistingRow[]> } {
  const params = new URLSearchParams(query.replace(/^.*\?/, ''));
  const b = new SqlBuilder();
  const where: string[] = [];
  for (const [name, value] of params) {
    if (!CONDITIONAL_PARAMS.has(name)) throw badRequest(`conditional operations on ${def.type} accept only identifier or _id, not ${name}`, name);
    const param = def.searchParams.find((p) => p.name === name);
    if (!param) throw badRequest(`unknown search parameter ${name}`, name);
    where.push(param.compile(value.split(','), undefined, b, 't'));
  }
  if (where.length === 0) throw badRequest(`a conditional ${def.type} request needs identifier=<system|value>`, 'identifier');
  if (def.pointer) where.push(`t.custodian_ods = ${b.param(principal.organization)}`);
  const sql = `select t.id, t.version, t.resource, ${def.pointer ? 't.patient_nhs, t.custodian_ods' : 'null as patient_nhs, null as custodian_ods'} from ${def.table} t where ${where.join(' and ')} limit 2 for update`;
  return {
    async find(tx: Queryable): Promise<ExistingRow[]> {
      return (await tx.query<ExistingRow>(sql, b.params)).rows;
    },
  };
}
