import type { Queryable } from './database';
import { textArrayLiteral } from './sql-builder';

/**
 * Set-based writes of resource rows: one statement per table and kind of change, whatever the
 * number of rows (DESIGN: "never one round trip per entry"). Each column travels as one text[]
 * parameter expanded by unnest and cast to the column's type, so the statement text (and its
 * prepared plan) is fixed. (Rows used to travel as one JSON document: every stored resource text
 * escaped again inside it by Node and parsed back out of jsonb by PostgreSQL.)
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

/** Column types per table, read from the catalogue once per database. */
const typesByDatabase = new WeakMap<object, Map<string, Promise<Map<string, string>>>>();

function columnTypes(q: Queryable, table: string): Promise<Map<string, string>> {
  if (!TABLE.test(table)) throw new Error(`bad table ${table}`);
  const key = q.root ?? q;
  let tables = typesByDatabase.get(key);
  if (!tables) {
    tables = new Map();
    typesByDatabase.set(key, tables);
  }
  let types = tables.get(table);
  if (!types) {
    types = q
      .query<{ name: string; type: string }>(
        'select attname as name, format_type(atttypid, atttypmod) as type from pg_attribute where attrelid = $1::regclass and attnum > 0 and not attisdropped',
        [table],
      )
      .then((r) => new Map(r.rows.map((c) => [c.name, c.type])));
    types.catch(() => tables?.delete(table));
    tables.set(table, types);
  }
  return types;
}

/** One row value as text for its column's text[] parameter (null stays null). */
function asText(v: unknown, type: string): string | null {
  if (v === null || v === undefined) return null;
  if (type === 'jsonb' || type === 'json') return JSON.stringify(v);
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'bigint') return String(v);
  if (typeof v === 'boolean') return v ? 't' : 'f';
  if (v instanceof Date) return v.toISOString();
  if (Array.isArray(v)) return textArrayLiteral(v.map(String));
  return JSON.stringify(v);
}

/** `select x.a::integer, x.b::text[], ... from unnest($1::text[], $2::text[], ...) as x(a, b, ...)` and the parameters. */
async function unnested(q: Queryable, table: string, columns: readonly string[], rows: readonly object[]): Promise<{ select: string; from: string; params: string[] }> {
  const cols = columnList(columns);
  const types = await columnTypes(q, table);
  const typeOf = columns.map((c) => {
    const type = types.get(c);
    if (!type) throw new Error(`${table} has no column ${c}`);
    return type;
  });
  const select = columns.map((c, k) => `x.${c}::${typeOf[k] as string} as ${c}`).join(', ');
  // Each column's values as one array literal built here: pg's own array serialiser escapes element by element in two passes.
  const params = columns.map((c, k) => textArrayLiteral(rows.map((r) => asText((r as Record<string, unknown>)[c], typeOf[k] as string))));
  return { select, from: `unnest(${columns.map((_, k) => `$${k + 1}::text[]`).join(', ')}) as x(${cols})`, params };
}

export async function insertRows(q: Queryable, table: string, columns: readonly string[], rows: readonly ResourceRow[]): Promise<void> {
  if (rows.length === 0) return;
  const u = await unnested(q, table, columns, rows);
  await q.query(`insert into ${table} (${columnList(columns)}) select ${u.select} from ${u.from}`, u.params);
}

/** Updates rows whose current version is `version - 1`; returns the ids that were updated. */
export async function updateRows(q: Queryable, table: string, columns: readonly string[], rows: readonly ResourceRow[]): Promise<Set<string>> {
  if (rows.length === 0) return new Set();
  const u = await unnested(q, table, columns, rows);
  const sets = columns.filter((c) => c !== 'id').map((c) => `${c} = n.${c}`).join(', ');
  const result = await q.query<{ id: string }>(
    `update ${table} t set ${sets} from (select ${u.select} from ${u.from}) n where t.id = n.id and t.version = n.version - 1 returning t.id`,
    u.params,
  );
  return new Set(result.rows.map((r) => r.id));
}

export async function deleteRows(q: Queryable, table: string, ids: readonly string[]): Promise<number> {
  if (ids.length === 0) return 0;
  if (!TABLE.test(table)) throw new Error(`bad table ${table}`);
  const result = await q.query(`delete from ${table} where id = any($1::text[])`, [ids]);
  return result.rowCount;
}

const VERSION_COLUMNS = ['resource_type', 'id', 'version', 'last_updated', 'deleted', 'patient_nhs', 'custodian_ods', 'categories', 'security', 'resource'];

export async function insertVersions(q: Queryable, rows: readonly VersionRow[]): Promise<void> {
  await insertRows(q, 'resource_version', VERSION_COLUMNS, rows as unknown as ResourceRow[]);
}
