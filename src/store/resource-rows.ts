import type { Queryable } from './database';

/**
 * Set-based writes of resource rows: one statement per table and kind of change, whatever the
 * number of rows (DESIGN: "never one round trip per entry"). Rows travel as one JSON parameter
 * expanded by jsonb_populate_recordset, so the statement text (and its prepared plan) is fixed.
 */
export interface ResourceRow {
  id: string;
  version: number;
  last_updated: string;
  resource: string;
  [column: string]: unknown;
}

export interface VersionRow {
  resource_type: string;
  id: string;
  version: number;
  last_updated: string;
  deleted: boolean;
  patient_nhs: string | null;
  custodian_ods: string | null;
  categories: string[];
  security: string[];
  resource: string | null;
}

const TABLE = /^[a-z_]+$/;

function columnList(columns: readonly string[]): string {
  for (const c of columns) if (!TABLE.test(c)) throw new Error(`bad column ${c}`);
  return columns.join(', ');
}

export async function insertRows(q: Queryable, table: string, columns: readonly string[], rows: readonly ResourceRow[]): Promise<void> {
  if (rows.length === 0) return;
  const cols = columnList(columns);
  await q.query(`insert into ${table} (${cols}) select ${cols} from jsonb_populate_recordset(null::${table}, $1::jsonb)`, [JSON.stringify(rows)]);
}

/** Updates rows whose current version is `version - 1`; returns the ids that were updated. */
export async function updateRows(q: Queryable, table: string, columns: readonly string[], rows: readonly ResourceRow[]): Promise<Set<string>> {
  if (rows.length === 0) return new Set();
  const sets = columns.filter((c) => c !== 'id').map((c) => `${c} = x.${c}`).join(', ');
  columnList(columns);
  const result = await q.query<{ id: string }>(
    `update ${table} t set ${sets} from jsonb_populate_recordset(null::${table}, $1::jsonb) x where t.id = x.id and t.version = x.version - 1 returning t.id`,
    [JSON.stringify(rows)],
  );
  return new Set(result.rows.map((r) => r.id));
}

export async function deleteRows(q: Queryable, table: string, ids: readonly string[]): Promise<number> {
  if (ids.length === 0) return 0;
  if (!TABLE.test(table)) throw new Error(`bad table ${table}`);
  const result = await q.query(`delete from ${table} where id = any($1::text[])`, [ids]);
  return result.rowCount;
}

const VERSION_COLUMNS = 'resource_type, id, version, last_updated, deleted, patient_nhs, custodian_ods, categories, security, resource';

export async function insertVersions(q: Queryable, rows: readonly VersionRow[]): Promise<void> {
  if (rows.length === 0) return;
  await q.query(
    `insert into resource_version (${VERSION_COLUMNS}) select ${VERSION_COLUMNS} from jsonb_populate_recordset(null::resource_version, $1::jsonb)`,
    [JSON.stringify(rows)],
  );
}
