import { PGlite } from '@electric-sql/pglite';
import type { Database, Queryable, QueryResult, SqlValue } from './database';

function toResult<R>(result: { rows: unknown[]; affectedRows?: number }): QueryResult<R> {
  // pg counts returned rows for SELECT and affected rows otherwise; PGlite reports 0 affected for SELECT.
  return { rows: result.rows as R[], rowCount: result.rows.length > 0 ? result.rows.length : (result.affectedRows ?? 0) };
}

/**
 * Embedded PostgreSQL (PGlite, WebAssembly). It has one connection: PGlite itself queues
 * statements issued outside a running transaction until that transaction ends.
 */
export class PgliteDatabase implements Database {
  readonly kind = 'pglite' as const;

  private constructor(private readonly db: PGlite) {}

  /** `dataDir` undefined means in memory (tests). */
  static async open(dataDir?: string): Promise<PgliteDatabase> {
    const db = await PGlite.create(dataDir ? { dataDir } : {});
    return new PgliteDatabase(db);
  }

  async query<R = Record<string, unknown>>(sql: string, params?: readonly SqlValue[]): Promise<QueryResult<R>> {
    return toResult<R>(await this.db.query(sql, params as unknown[] | undefined));
  }

  transaction<T>(work: (tx: Queryable) => Promise<T>): Promise<T> {
    return this.db.transaction(async (t) => {
      const tx: Queryable = {
        query: async <R>(sql: string, params?: readonly SqlValue[]) => toResult<R>(await t.query(sql, params as unknown[] | undefined)),
        root: this,
      };
      return work(tx);
    });
  }

  async exec(sql: string): Promise<void> {
    await this.db.exec(sql);
  }

  async close(): Promise<void> {
    await this.db.close();
  }
}
