import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testNhsNumbers } from '../src/registry/nhs-number';
import { loadKeyEncryptionKey } from '../src/resolve/key-encryption';
import type { Database } from '../src/store/database';
import { openDatabase } from '../src/store/open';
import { PgDatabase } from '../src/store/pg-database';

/** The schema the benchmark owns on the shared PostgreSQL: dropped and recreated on a fresh seed. */
export const BENCH_SCHEMA = 'bench';
/** `locus publish --from-dir` writes into its own schema so that it leaves the search data set as seeded. */
export const PUBLISH_SCHEMA = 'bench_publish';
/** bench/audit.ts appends its synthetic events here, so repeated runs verify exactly n and leave `bench` alone. */
export const AUDIT_SCHEMA = 'bench_audit';
export const BENCH_AUDIENCE = 'urn:locus:bench';
/** The parent mints tokens with this key; the server child trusts it (same directory, same key). */
export const ISSUER_DIR = join(tmpdir(), 'locus-bench-issuer');
export const DEFAULT_DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/test';

/**
 * The registries the benchmark starts run on PostgreSQL, which needs the key sealing the retrieval
 * signing keys (src/resolve/key-encryption.ts): one kept beside the benchmark's issuer key, so a
 * schema kept with --reuse still opens its keys. Children inherit it through the environment.
 */
process.env.LOCUS_KEY_ENCRYPTION_KEY ??= loadKeyEncryptionKey(undefined, { dataDir: ISSUER_DIR }).key.toString('base64');

export interface BenchOptions {
  /** Run one part only: the search loads (publish figure when seeding), the audit trail, or publish from a folder. */
  only?: 'search' | 'audit' | 'publish-dir' | 'beyond';
  databaseUrl: string;
  pointers: number;
  patients: number;
  reuse: boolean;
  trusts: number;
  bundleSize: number;
  publishConcurrency: number;
  loadSeconds: number;
  warmupSeconds: number;
  connections: number;
  rounds: number;
  poolSize: number;
  auditEvents: number;
  publishDirStudies: number;
  publishDirInstances: number;
}

function intEnv(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw.replace(/_/g, ''));
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a whole number, got ${raw}`);
  return n;
}

/** `--quick` is 50k pointers / 10k patients; `--reuse` keeps a schema already seeded at that scale. */
export function benchOptions(argv: string[], env: NodeJS.ProcessEnv): BenchOptions {
  const known = new Set(['--quick', '--reuse']);
  const onlyArg = argv.find((a) => a.startsWith('--only='));
  const only = onlyArg?.slice('--only='.length);
  if (only !== undefined && !['search', 'audit', 'publish-dir', 'beyond'].includes(only)) throw new Error('--only takes search, audit, publish-dir or beyond');
  const unknown = argv.filter((a) => !known.has(a) && a !== onlyArg);
  if (unknown.length > 0) throw new Error(`unknown argument ${unknown.join(' ')} (use --quick, --reuse and --only=search|audit|publish-dir|beyond)`);
  const quick = argv.includes('--quick');
  const options: BenchOptions = {
    only: only as BenchOptions['only'],
    databaseUrl: env.DATABASE_URL ?? DEFAULT_DATABASE_URL,
    pointers: intEnv(env, 'BENCH_POINTERS', quick ? 50_000 : 1_000_000),
    patients: intEnv(env, 'BENCH_PATIENTS', quick ? 10_000 : 200_000),
    reuse: argv.includes('--reuse'),
    trusts: intEnv(env, 'BENCH_TRUSTS', 15),
    bundleSize: intEnv(env, 'BENCH_BUNDLE_SIZE', 500),
    publishConcurrency: intEnv(env, 'BENCH_PUBLISH_CONCURRENCY', 4),
    loadSeconds: intEnv(env, 'BENCH_LOAD_SECONDS', quick ? 2 : 3),
    warmupSeconds: intEnv(env, 'BENCH_WARMUP_SECONDS', quick ? 2 : 3),
    connections: intEnv(env, 'BENCH_CONNECTIONS', 32),
    rounds: Math.max(1, intEnv(env, 'BENCH_ROUNDS', quick ? 8 : 20)),
    poolSize: intEnv(env, 'DATABASE_POOL_SIZE', 12),
    auditEvents: intEnv(env, 'BENCH_AUDIT_EVENTS', quick ? 100_000 : 1_000_000),
    publishDirStudies: intEnv(env, 'BENCH_PUBLISH_DIR_STUDIES', quick ? 200 : 2_000),
    publishDirInstances: intEnv(env, 'BENCH_PUBLISH_DIR_INSTANCES', 10),
  };
  if (options.patients < 1 || options.pointers < options.patients) throw new Error('BENCH_POINTERS must be at least BENCH_PATIENTS (and both above zero)');
  if (options.patients > 900_000) throw new Error('BENCH_PATIENTS is limited by the 999 test range of NHS numbers (at most 900,000)');
  if (options.bundleSize < 1 || options.bundleSize > 1000) throw new Error('BENCH_BUNDLE_SIZE must be 1..1000 (a Bundle carries at most 1000 entries)');
  if (options.trusts < 1 || options.trusts > 99) throw new Error('BENCH_TRUSTS must be 1..99');
  return options;
}

/** The first `n` valid test NHS numbers, in order: seeding and load agree on them without storing a list. */
export function benchPatients(n: number): string[] {
  const out: string[] = [];
  for (const nhs of testNhsNumbers()) {
    if (out.length === n) break;
    out.push(nhs);
  }
  return out;
}

/** Synthetic ODS codes of the benchmark's trusts: RB01, RB02, ... */
export const trustOds = (i: number): string => `RB${String(i + 1).padStart(2, '0')}`;

export async function dropAndCreateSchema(databaseUrl: string, schema = BENCH_SCHEMA): Promise<void> {
  const admin = new PgDatabase(databaseUrl, { max: 1 });
  try {
    await admin.exec(`drop schema if exists ${schema} cascade; create schema ${schema}`);
  } finally {
    await admin.close();
  }
}

export async function schemaExists(databaseUrl: string): Promise<boolean> {
  const admin = new PgDatabase(databaseUrl, { max: 1 });
  try {
    const r = await admin.query<{ n: number }>('select count(*)::int as n from pg_namespace where nspname = $1', [BENCH_SCHEMA]);
    return (r.rows[0]?.n ?? 0) > 0;
  } finally {
    await admin.close();
  }
}

/** The bench schema, migrated (openDatabase runs the migrations). */
export function openBenchDatabase(databaseUrl: string, poolSize: number, schema = BENCH_SCHEMA): Promise<Database> {
  mkdirSync(ISSUER_DIR, { recursive: true });
  return openDatabase({ databaseUrl, searchPath: schema, poolSize });
}

export function fmt(n: number, digits = 0): string {
  return n.toLocaleString('en-GB', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export function log(message: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

/** Where the benchmark compiles the registry (under dist/, which git ignores, so node_modules resolve). */
export const COMPILED_DIR = join(__dirname, '..', 'dist', 'bench');
let compiled = false;

/**
 * Compiles src/ and the bench's server child with tsc, once per run: the server under load runs
 * as `node` runs it in service (the image runs dist/, not tsx). Returns the compiled tree's root.
 */
export function compileRegistry(): string {
  if (!compiled) {
    const root = join(__dirname, '..');
    log('compiling the registry for the server under load (tsc)');
    execFileSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(root, 'bench', 'tsconfig.json'), '--outDir', COMPILED_DIR], { stdio: 'inherit' });
    cpSync(join(root, 'src', 'store', 'migrations'), join(COMPILED_DIR, 'src', 'store', 'migrations'), { recursive: true });
    compiled = true;
  }
  return COMPILED_DIR;
}
