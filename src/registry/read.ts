import type { PointerPolicy } from '../access/policy';
import type { Principal } from '../access/principal';
import { FhirError, notFound } from '../fhir/errors';
import type { Queryable } from '../store/database';
import { SqlBuilder } from '../store/sql-builder';
import type { ResourceTypeDef } from './resource-types';

export interface ReadResult {
  id: string;
  version: number;
  lastUpdated: string;
  text: string;
  patient?: string;
}

interface ReadDeps {
  principal: Principal;
  policy: PointerPolicy;
  now?: Date;
}

function visible(def: ResourceTypeDef, deps: ReadDeps, alias: string, b: SqlBuilder): string {
  return def.pointer ? deps.policy.visible(deps.principal, alias, def.type as 'ImagingStudy', b, deps.now ?? new Date()) : 'true';
}

const gone = (def: ResourceTypeDef, id: string): FhirError => new FhirError(410, 'deleted', `${def.type}/${id} has been deleted`, 'RESOURCE_DELETED');

/**
 * Read by id. A pointer the policy withholds answers 404 exactly as one that never existed; a
 * deleted one the caller could have seen answers 410.
 */
export async function readResource(q: Queryable, def: ResourceTypeDef, id: string, deps: ReadDeps): Promise<ReadResult> {
  const b = new SqlBuilder();
  const idParam = b.param(id);
  const r = await q.query<{ version: number; last_updated: Date; resource: string; patient_nhs?: string }>(
    `select t.version, t.last_updated, t.resource${def.pointer ? ', t.patient_nhs' : ''} from ${def.table} t where t.id = ${idParam} and ${visible(def, deps, 't', b)}`,
    b.params,
  );
  const row = r.rows[0];
  if (row) return { id, version: row.version, lastUpdated: row.last_updated.toISOString(), text: row.resource, patient: row.patient_nhs };
  const latest = await latestVersion(q, def, id, deps);
  if (latest?.deleted) throw gone(def, id);
  throw notFound(`${def.type}/${id} is not known to this registry`);
}

async function latestVersion(q: Queryable, def: ResourceTypeDef, id: string, deps: ReadDeps): Promise<{ deleted: boolean } | undefined> {
  const b = new SqlBuilder();
  const sql = `select t.deleted from resource_version t where t.resource_type = ${b.param(def.type)} and t.id = ${b.param(id)} and ${visible(def, deps, 't', b)} order by t.version desc limit 1`;
  return (await q.query<{ deleted: boolean }>(sql, b.params)).rows[0];
}

export async function vreadResource(q: Queryable, def: ResourceTypeDef, id: string, version: number, deps: ReadDeps): Promise<ReadResult> {
  const b = new SqlBuilder();
  const sql = `select t.version, t.last_updated, t.deleted, t.resource, t.patient_nhs from resource_version t
    where t.resource_type = ${b.param(def.type)} and t.id = ${b.param(id)} and t.version = ${b.param(version)} and ${visible(def, deps, 't', b)}`;
  const row = (await q.query<{ version: number; last_updated: Date; deleted: boolean; resource: string | null; patient_nhs: string | null }>(sql, b.params)).rows[0];
  if (!row) throw notFound(`${def.type}/${id}/_history/${version} is not known to this registry`);
  if (row.deleted || row.resource === null) throw gone(def, id);
  return { id, version: row.version, lastUpdated: row.last_updated.toISOString(), text: row.resource, patient: row.patient_nhs ?? undefined };
}

export interface HistoryEntry {
  version: number;
  lastUpdated: string;
  deleted: boolean;
  text: string | null;
  patient?: string;
}

export async function historyOf(q: Queryable, def: ResourceTypeDef, id: string, count: number, deps: ReadDeps): Promise<HistoryEntry[]> {
  const b = new SqlBuilder();
  const sql = `select t.version, t.last_updated, t.deleted, t.resource, t.patient_nhs from resource_version t
    where t.resource_type = ${b.param(def.type)} and t.id = ${b.param(id)} and ${visible(def, deps, 't', b)} order by t.version desc limit ${count}`;
  const rows = (await q.query<{ version: number; last_updated: Date; deleted: boolean; resource: string | null; patient_nhs: string | null }>(sql, b.params)).rows;
  if (rows.length === 0) throw notFound(`${def.type}/${id} is not known to this registry`);
  return rows.map((r) => ({ version: r.version, lastUpdated: r.last_updated.toISOString(), deleted: r.deleted, text: r.resource, patient: r.patient_nhs ?? undefined }));
}
