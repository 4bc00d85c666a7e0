import { mkdirSync } from 'node:fs';
import type { Database } from './database';
import { migrate } from './migrate';
import { PgDatabase } from './pg-database';
import { PgliteDatabase } from './pglite-database';

export interface OpenOptions {
  databaseUrl?: string;
  /** PGlite data directory; undefined with no databaseUrl means in memory. */
  dataDir?: string;
  poolSize?: number;
  searchPath?: string;
}

/** `DATABASE_URL` set means PostgreSQL; unset means embedded PGlite. Migrations run here. */
export async function openDatabase(options: OpenOptions): Promise<Database> {
  let db: Database;
  if (options.databaseUrl) {
    db = new PgDatabase(options.databaseUrl, { max: options.poolSize, searchPath: options.searchPath });
  } else {
    if (options.dataDir) mkdirSync(options.dataDir, { recursive: true });
    db = await PgliteDatabase.open(options.dataDir ? `${options.dataDir}/pg` : undefined);
  }
  await migrate(db);
  return db;
}
