import { createHash } from 'node:crypto';
import pg from 'pg';
import type { Database, Queryable, QueryResult, SqlValue } from './database';
import { StoreUnavailableError } from './database';

// int8 (bigint) and numeric come back as numbers, as they do from PGlite: audit sequence numbers
// and counts stay far below 2^53.
const types = {
  getTypeParser(oid: number, format?: 'text' | 'binary'): (value: string) => unknown {
    if (oid === 20) return (v: string) => Number(v);
    return pg.types.getTypeParser(oid, format ?? 'text') as (value: string) => unknown;
  },
};

const CONNECTION_ERRORS = new Set(['ECONNREFUSED', 'ENOTFOUND', 'ETIMEDOUT', 'ECONNRESET', '57P01', '57P03', '08006', '08001', '08004']);

/** Names by statement text, so the hot statements are not hashed again on every call. */
const names = new Map<string, string>();

function statementName(sql: string): string {
  let name = names.get(sql);
  if (name === undefined) {
    name = `l_${createHash('sha1').update(sql).digest('hex').slice(0, 20)}`;
    // Statement texts are a fixed set in practice; the bound only guards against one that is not.
    if (names.size >= 2000) names.clear();
    names.set(sql, name);
  }
  return name;
}

function wrap(error: unknown): unknown {
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && CONNECTION_ERRORS.has(code)) {
    return new StoreUnavailableError('the database is unavailable', { cause: error });
  }
  if (error instanceof Error && /timeout exceeded when trying to connect|Connection terminated/i.test(error.message)) {
    return new StoreUnavailableError('the database is unavailable', { cause: error });
  }
  return error;
}

async function run<R>(client: pg.Pool | pg.PoolClient, sql: string, params: readonly SqlValue[] | undefined): Promise<QueryResult<R>> {
  try {
    // Named statements are prepared once per connection and reused: the hot searches skip parsing.
    const result = await client.query({ name: statementName(sql), text: sql, values: params as unknown[] | undefined, types });
    return { rows: result.rows as R[], rowCount: result.rowCount ?? 0 };
  } catch (error) {
    throw wrap(error);
  }
}

export class PgDatabase implements Database {
  readonly kind = 'postgres' as const;
  private readonly pool: pg.Pool;

  constructor(connectionString: string, options: { max?: number; searchPath?: string } = {}) {
    this.pool = new pg.Pool({
      connectionString,
      max: options.max ?? 10,
      connectionTimeoutMillis: 5000,
      ...(options.searchPath ? { options: `-c search_path=${options.searchPath}` } : {}),
    });
    // An idle client losing its connection must not crash the process; the next query reports it.
    this.pool.on('error', () => undefined);
  }

  query<R = Record<string, unknown>>(sql: string, params?: readonly SqlValue[]): Promise<QueryResult<R>> {
    return run<R>(this.pool, sql, params);
  }

  async transaction<T>(work: (tx: Queryable) => Promise<T>): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (error) {
      throw wrap(error);
    }
    const tx: Queryable = { query: (sql, params) => run(client, sql, params), root: this };
    try {
      await client.query('BEGIN');
      const result = await work(tx);
      await client.query('COMMIT');
      return result;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw wrap(error);
    } finally {
      client.release();
    }
  }

  async exec(sql: string): Promise<void> {
    try {
      await this.pool.query(sql);
    } catch (error) {
      throw wrap(error);
    }
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
