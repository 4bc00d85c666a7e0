import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { networkPolicy } from '../src/access/network-policy';
import { allowAllPolicy } from '../src/access/policy';
import type { PointerPolicy } from '../src/access/policy';
import type { Principal } from '../src/access/principal';
import { ROLE_SCOPES, parseScopes } from '../src/access/principal';
import { createAuditWriter } from '../src/audit/audit-store';
import { imagingStudyDef } from '../src/registry/resource-types';
import { searchResources } from '../src/registry/search';
import type { Queryable, QueryResult, SqlValue } from '../src/store/database';
import { BENCH_SCHEMA, DEFAULT_DATABASE_URL, benchPatients, fmt, openBenchDatabase } from './common';

/**
 * `npx tsx bench/sql-costs.ts`: the database side of one patient search and one AuditEvent, on
 * the schema `npm run bench` seeded, sequential (no contention). Prints the search statement's
 * cost under each plan-cache mode with the network and allow-all policies (taking turns in blocks
 * of 100 statements, one connection each), its EXPLAIN ANALYZE, and the audit insert's cost with
 * and without a durable commit. Each cost is the wall time per statement and, with the server on
 * this machine, the backend's CPU time.
 */
const N = Number(process.env.SQL_COSTS_N ?? 2000);
export const NHS = 'https://fhir.nhs.uk/Id/nhs-number';

export const principal: Principal = {
  subject: 'bench-clinician',
  issuer: 'urn:locus:dev-issuer',
  organization: 'RB01',
  role: 'clinician',
  scopes: parseScopes(ROLE_SCOPES.clinician),
  purposeOfUse: 'TREAT',
};

/** A cost: wall time per statement as the client saw it, and the backend's own CPU time per statement. */
interface Cost {
  ms: number;
  backendUs?: number;
}

/**
 * The backend's CPU time so far in ns (/proc/<pid>/schedstat, first field), or undefined when the
 * server is not on this machine. Unlike wall time, it leaves out what other processes and the round
 * trips cost, so it shows a few µs of difference between statement variants on a busy box.
 */
function backendCpuNs(pid: number): number | undefined {
  try {
    return Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0]);
  } catch {
    return undefined;
  }
}

async function backendPid(client: pg.Client): Promise<number> {
  return (await client.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]?.pid as number;
}

async function timed(client: pg.Client, run: () => Promise<void>): Promise<Cost> {
  const pid = await backendPid(client);
  const cpu0 = backendCpuNs(pid);
  const t0 = process.hrtime.bigint();
  await run();
  const ms = Number(process.hrtime.bigint() - t0) / 1e6 / N;
  const cpu1 = backendCpuNs(pid);
  return { ms, backendUs: cpu0 === undefined || cpu1 === undefined ? undefined : (cpu1 - cpu0) / 1e3 / N };
}

function show(c: Cost): string {
  return `${fmt(c.ms, 3)} ms${c.backendUs === undefined ? '' : ` (backend CPU ${fmt(c.backendUs, 1)} µs)`}`;
}

async function connect(options: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: process.env.DATABASE_URL ?? DEFAULT_DATABASE_URL, options: `-c search_path=${BENCH_SCHEMA} ${options}` });
  await client.connect();
  return client;
}

export function queryable(client: pg.Client): Queryable {
  return {
    async query<R>(sql: string, params?: readonly SqlValue[]): Promise<QueryResult<R>> {
      const r = await client.query({ name: `s_${sql.length}_${sql.slice(0, 20).replace(/\W/g, '')}`, text: sql, values: params as unknown[] | undefined });
      return { rows: r.rows as R[], rowCount: r.rowCount ?? 0 };
    },
  };
}

/** Statements per block: the variants take turns in blocks this long, so drift falls on all alike. */
const BLOCK = 100;

/**
 * Each policy's patient search under one plan-cache mode, the policies taking turns in blocks of
 * `BLOCK` statements, each on its own connection (its own prepared statements and plan cache).
 * Time counts only while a variant's own statements run; the first block of each is untimed.
 */
async function searchCosts(policies: readonly PointerPolicy[], mode: string, patients: string[]): Promise<Cost[]> {
  const runs = await Promise.all(
    policies.map(async (policy) => {
      const client = await connect(`-c plan_cache_mode=${mode}`);
      return { policy, client, q: queryable(client), pid: await backendPid(client), ns: 0, cpuNs: 0 as number | undefined };
    }),
  );
  for (let first = 0; first < N + BLOCK; first += BLOCK) {
    for (const run of runs) {
      const cpu0 = backendCpuNs(run.pid);
      const t0 = process.hrtime.bigint();
      for (let i = first; i < first + BLOCK; i++) {
        const nhs = patients[(i * 7919) % patients.length] as string;
        await searchResources(run.q, { def: imagingStudyDef, params: [['patient.identifier', `${NHS}|${nhs}`]], strict: false, principal, policy: run.policy, fhirBase: 'http://x/fhir', maxPageSize: 100, defaultPageSize: 20 });
      }
      if (first === 0) continue;
      run.ns += Number(process.hrtime.bigint() - t0);
      const cpu1 = backendCpuNs(run.pid);
      run.cpuNs = cpu0 === undefined || cpu1 === undefined || run.cpuNs === undefined ? undefined : run.cpuNs + (cpu1 - cpu0);
    }
  }
  await Promise.all(runs.map((r) => r.client.end()));
  return runs.map((r) => ({ ms: r.ns / 1e6 / N, backendUs: r.cpuNs === undefined ? undefined : r.cpuNs / 1e3 / N }));
}

async function explain(patients: string[], policy: PointerPolicy): Promise<void> {
  const client = await connect('');
  let captured: { sql: string; params: readonly SqlValue[] } | undefined;
  const q: Queryable = { query: async (sql, params) => { captured = { sql, params: params ?? [] }; return { rows: [], rowCount: 0 }; } };
  await searchResources(q, { def: imagingStudyDef, params: [['patient.identifier', `${NHS}|${patients[0] as string}`]], strict: false, principal, policy, fhirBase: 'http://x/fhir', maxPageSize: 100, defaultPageSize: 20 });
  const c = captured as { sql: string; params: readonly SqlValue[] };
  const r = await client.query(`explain (analyze, buffers) ${c.sql}`, c.params as unknown[]);
  console.log(`\nEXPLAIN ANALYZE, network policy (custom plan):\n${r.rows.map((x: Record<string, string>) => `  ${x['QUERY PLAN']}`).join('\n')}`);
  await client.end();
}

async function auditCost(synchronousCommit: 'on' | 'off'): Promise<Cost> {
  const client = await connect(`-c synchronous_commit=${synchronousCommit}`);
  const q = queryable(client);
  const writer = createAuditWriter(true);
  const entities = Array.from({ length: 5 }, () => ({ type: 'ImagingStudy', id: randomUUID(), version: 1 }));
  const cost = await timed(client, async () => {
    for (let i = 0; i < N; i++) {
      await writer.write(q, { requestId: randomUUID(), subtype: 'search-type', action: 'E', outcome: '0', principal, clientIp: '127.0.0.1', patients: ['9990000018'], entities, query: `patient.identifier=${NHS}|9990000018`, resourceType: 'ImagingStudy' });
    }
  });
  await client.end();
  return cost;
}

async function main(): Promise<void> {
  const patients = benchPatients(Number(process.env.BENCH_PATIENTS ?? 10_000));
  console.log(`database cost per statement, ${fmt(N)} sequential executions per variant, one connection each (schema ${BENCH_SCHEMA}):`);
  // As in service: the policy keeps a snapshot of organisation kinds and agreements (network-policy.ts).
  const db = await openBenchDatabase(process.env.DATABASE_URL ?? DEFAULT_DATABASE_URL, 1);
  const network = networkPolicy(db, { refreshMs: 0 });
  await network.refresh();
  const variants = [['network policy', network], ['network policy before its first snapshot', networkPolicy()], ['allow-all policy', allowAllPolicy]] as const;
  for (const mode of ['auto', 'force_custom_plan', 'force_generic_plan']) {
    const costs = await searchCosts(variants.map(([, policy]) => policy), mode, patients);
    variants.forEach(([name], k) => console.log(`  patient search, ${name}, plan_cache_mode=${mode}: ${show(costs[k] as Cost)}`));
  }
  console.log(`  AuditEvent insert (chain update + insert + commit), synchronous_commit=on: ${show(await auditCost('on'))}`);
  console.log(`  AuditEvent insert, synchronous_commit=off: ${show(await auditCost('off'))}`);
  await explain(patients, network);
  await db.close();
}

if (require.main === module) {
  main().catch((e: unknown) => {
    process.stderr.write(`sql-costs: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 1;
  });
}
