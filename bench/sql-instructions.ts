import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { networkPolicy } from '../src/access/network-policy';
import { allowAllPolicy } from '../src/access/policy';
import type { PointerPolicy } from '../src/access/policy';
import { imagingStudyDef } from '../src/registry/resource-types';
import { searchResources } from '../src/registry/search';
import { BENCH_SCHEMA, DEFAULT_DATABASE_URL, benchPatients, dropAndCreateSchema, fmt, log, openBenchDatabase } from './common';
import { NHS, principal, queryable } from './sql-costs';

/**
 * `npx tsx bench/sql-instructions.ts`: what one patient search costs PostgreSQL in instructions,
 * per policy, counted by valgrind's callgrind. Unlike time, and unlike CPU time on these shared
 * hosts (which moves by a factor of two as neighbours come and go), an instruction count is the
 * same from run to run: it shows a change of a few per cent in the database's work per search.
 *
 * It starts a private PostgreSQL (this machine's binaries, a throw-away data directory), migrates
 * the schema, copies the organisations, agreements, consents and the pointers of
 * SQL_INSTRUCTIONS_PATIENTS patients from the seeded `bench` schema (`npm run bench` first), then
 * restarts it under callgrind. Each policy's searches run on two fresh connections, one running
 * W statements and one W + N; the difference over N is the cost of one search, free of
 * connection start-up and of the first (planned) executions. Needs valgrind and, as root, the
 * `postgres` user (PostgreSQL will not run as root).
 */
const PATIENTS = Number(process.env.SQL_INSTRUCTIONS_PATIENTS ?? 2000);
const WARM = 50;
const N = Number(process.env.SQL_INSTRUCTIONS_N ?? 400);
const PORT = Number(process.env.SQL_INSTRUCTIONS_PORT ?? 5499);
const TABLES = ['organization', 'sharing_agreement', 'consent', 'endpoint'];

function pgBin(name: string): string {
  const versions = readdirSync('/usr/lib/postgresql').sort((a, b) => Number(b) - Number(a));
  return join('/usr/lib/postgresql', versions[0] as string, 'bin', name);
}

const asRoot = process.getuid?.() === 0;

/** Runs a PostgreSQL program as the `postgres` user when this process is root. */
function asPostgres(command: string, args: string[]): { command: string; args: string[] } {
  return asRoot ? { command: 'su', args: ['postgres', '-s', '/bin/sh', '-c', [command, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ')] } : { command, args };
}

function run(command: string, args: string[]): void {
  const c = asPostgres(command, args);
  execFileSync(c.command, c.args, { stdio: ['ignore', 'ignore', 'inherit'] });
}

function startServer(dir: string, underCallgrind: boolean): ChildProcess {
  const postgres = [pgBin('postgres'), '-D', join(dir, 'data'), '-p', String(PORT), '-k', dir, '-c', 'listen_addresses=127.0.0.1'];
  const line = underCallgrind ? ['valgrind', '--tool=callgrind', `--callgrind-out-file=${join(dir, 'cg.%p')}`, ...postgres] : postgres;
  const c = asPostgres(line[0] as string, line.slice(1));
  return spawn(c.command, c.args, { stdio: 'ignore', detached: true });
}

async function waitReady(url: string): Promise<void> {
  for (let i = 0; i < 240; i++) {
    const c = new pg.Client({ connectionString: url });
    try {
      await c.connect();
      await c.end();
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  throw new Error('the private PostgreSQL did not start within a minute');
}

function stopServer(dir: string): void {
  run(pgBin('pg_ctl'), ['-D', join(dir, 'data'), '-m', 'fast', '-w', 'stop']);
}

/** Copies a table's rows from the source schema by COPY through psql (text format, both ends). */
function copyRows(source: string, target: string, table: string, where = ''): void {
  const out = execFileSync('psql', [source, '-qAt', '-c', `\\copy (select * from ${BENCH_SCHEMA}.${table} ${where}) to stdout`], { maxBuffer: 1 << 30 });
  execFileSync('psql', [target, '-q', '-c', `\\copy ${BENCH_SCHEMA}.${table} from stdin`], { input: out, stdio: ['pipe', 'ignore', 'inherit'] });
}

/** Instructions of one backend: its callgrind file, written when the connection ends. */
async function backendInstructions(dir: string, pid: number): Promise<number> {
  const file = join(dir, `cg.${pid}`);
  for (let i = 0; i < 100; i++) {
    if (existsSync(file)) {
      const m = /\ntotals: (\d+)/.exec(readFileSync(file, 'utf8'));
      if (m) return Number(m[1]);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no callgrind totals for backend ${pid}`);
}

async function searches(url: string, dir: string, policy: PointerPolicy, patients: string[], count: number): Promise<number> {
  const client = new pg.Client({ connectionString: url, options: `-c search_path=${BENCH_SCHEMA}` });
  await client.connect();
  const pid = (await client.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]?.pid as number;
  const q = queryable(client);
  for (let i = 0; i < count; i++) {
    const nhs = patients[(i * 7919) % patients.length] as string;
    await searchResources(q, { def: imagingStudyDef, params: [['patient.identifier', `${NHS}|${nhs}`]], strict: false, principal, policy, fhirBase: 'http://x/fhir', maxPageSize: 100, defaultPageSize: 20 });
  }
  await client.end();
  return backendInstructions(dir, pid);
}

async function main(): Promise<void> {
  const source = process.env.DATABASE_URL ?? DEFAULT_DATABASE_URL;
  const dir = mkdtempSync(join(tmpdir(), 'locus-sql-instructions-'));
  if (asRoot) chownSync(dir, Number(execFileSync('id', ['-u', 'postgres']).toString().trim()), Number(execFileSync('id', ['-g', 'postgres']).toString().trim()));
  const url = `postgres://postgres@127.0.0.1:${PORT}/postgres`;
  let server: ChildProcess | undefined;
  try {
    log(`private PostgreSQL in ${dir}, port ${PORT}`);
    run(pgBin('initdb'), ['-D', join(dir, 'data'), '-A', 'trust', '-U', 'postgres']);
    server = startServer(dir, false);
    await waitReady(url);
    await dropAndCreateSchema(url);
    const db = await openBenchDatabase(url, 1);
    await db.close();
    const patients = benchPatients(PATIENTS);
    for (const t of TABLES) copyRows(source, url, t);
    copyRows(source, url, 'imaging_study', `where patient_nhs in (${patients.map((p) => `'${p.replace(/\D/g, '')}'`).join(',')})`);
    execFileSync('psql', [url, '-q', '-c', 'vacuum analyze'], { stdio: 'inherit' });
    const first = server;
    const firstExited = new Promise((resolve) => first.once('exit', resolve));
    stopServer(dir);
    await firstExited;
    log('restarting it under callgrind');
    server = startServer(dir, true);
    await waitReady(url);
    const snapshotDb = await openBenchDatabase(url, 1);
    const network = networkPolicy(snapshotDb, { refreshMs: 0 });
    await network.refresh();
    const policies: [string, PointerPolicy][] = [['allow-all policy', allowAllPolicy], ['network policy', network]];
    // A first connection per policy, not counted: whatever a fresh server does once (the relation
    // cache's init file, catalogue caches) falls on it.
    for (const [, policy] of policies) await searches(url, dir, policy, patients, 10);
    const perSearch: number[] = [];
    for (const [name, policy] of policies) {
      const short = await searches(url, dir, policy, patients, WARM);
      const long = await searches(url, dir, policy, patients, WARM + N);
      perSearch.push((long - short) / N);
      console.log(`  patient search, ${name}: ${fmt((long - short) / N)} instructions in PostgreSQL per search`);
    }
    await snapshotDb.close();
    const [allowAll, networkCost] = perSearch as [number, number];
    console.log(`  the network policy adds ${fmt(networkCost - allowAll)} instructions (${fmt(((networkCost - allowAll) / allowAll) * 100, 1)} %) to a patient search's work in PostgreSQL`);
  } finally {
    if (server) {
      const exited = new Promise((resolve) => {
        if (server?.exitCode !== null) resolve(undefined);
        server?.once('exit', resolve);
        setTimeout(resolve, 30_000).unref();
      });
      try {
        stopServer(dir);
      } catch {
        server.kill('SIGKILL');
      }
      await exited; // valgrind writes the postmaster's counts as it exits
    }
    rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 });
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`sql-instructions: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});
