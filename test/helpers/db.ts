import { randomBytes } from 'node:crypto';
import { PgDatabase } from '../../src/store/pg-database';
import type { Database } from '../../src/store/database';
import { openDatabase } from '../../src/store/open';

/**
 * A clean database for one test file: a fresh in-memory PGlite, or, when DATABASE_URL is set
 * (CI's second run), a fresh schema on the real PostgreSQL, dropped at the end.
 */
export async function testDatabase(): Promise<{ db: Database; drop(): Promise<void> }> {
  const url = process.env.DATABASE_URL;
  if (!url) {
    const db = await openDatabase({});
    return { db, drop: () => db.close() };
  }
  const schema = `t_${randomBytes(6).toString('hex')}`;
  const admin = new PgDatabase(url, { max: 1 });
  await admin.exec(`create schema ${schema}`);
  await admin.close();
  const db = await openDatabase({ databaseUrl: url, searchPath: schema, poolSize: 8 });
  return {
    db,
    async drop() {
      await db.close();
      const a = new PgDatabase(url, { max: 1 });
      await a.exec(`drop schema ${schema} cascade`);
      await a.close();
    },
  };
}
