import { readFileSync, readdirSync } from 'node:fs';
import autocannon from 'autocannon';
import { loadDevIssuer } from '../src/access/dev-issuer';
import { BENCH_AUDIENCE, ISSUER_DIR, benchOptions, benchPatients, log } from './common';
import { startChild, stopChild } from './load';

/**
 * `ROUNDS=n npx tsx bench/cpu-split.ts [variant ...]`: patient-search loads against the seeded
 * `bench` schema (run `npm run bench -- --only=search` first), variants interleaved, and where the
 * box's CPU went during each: the registry process, PostgreSQL (backends and background), the load
 * generator (this process), and the machine as a whole (/proc/stat). A variant is `audit`,
 * `noaudit`, `allow-all`, or environment settings for the server (`NAME=value,NAME=value`). Ends
 * with each variant's median req/s and its median ratio to the last variant, round by round.
 * A diagnostic for comparing changes on a noisy box, not one of the benchmark's figures.
 */
const TICK = 100; // USER_HZ

function cpuOf(pid: number): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const parts = f.slice(f.lastIndexOf(')') + 2).split(' ');
    return (Number(parts[11]) + Number(parts[12])) / TICK;
  } catch {
    return 0;
  }
}

/** Read and write system calls a process has made (/proc/pid/io), and its context switches: preempted (involuntary) and waiting (voluntary). */
function syscallsOf(pid: number): { reads: number; writes: number; preempted: number; waits: number } {
  try {
    const f = readFileSync(`/proc/${pid}/io`, 'utf8');
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    return {
      reads: Number(/syscr: (\d+)/.exec(f)?.[1] ?? 0),
      writes: Number(/syscw: (\d+)/.exec(f)?.[1] ?? 0),
      preempted: Number(/nonvoluntary_ctxt_switches:\s+(\d+)/.exec(status)?.[1] ?? 0),
      waits: Number(/\nvoluntary_ctxt_switches:\s+(\d+)/.exec(status)?.[1] ?? 0),
    };
  } catch {
    return { reads: 0, writes: 0, preempted: 0, waits: 0 };
  }
}

function postgresPids(): number[] {
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .map(Number)
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/comm`, 'utf8').trim().startsWith('postgres');
      } catch {
        return false;
      }
    });
}

const VARIANTS: Record<string, Record<string, string>> = { audit: {}, noaudit: { LOCUS_AUDIT: 'false' }, 'allow-all': { LOCUS_BENCH_POLICY: 'allow-all' } };

async function main(): Promise<void> {
  const names = process.argv.slice(2);
  const rounds = Number(process.env.ROUNDS ?? 1);
  const list = names.length ? names : ['audit'];
  const got = new Map<string, number[]>(list.map((n) => [n, []]));
  for (let r = 0; r < rounds; r++) for (const name of list) got.get(name)?.push(await once(name));
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
  const base = got.get(list[list.length - 1] as string) as number[];
  for (const [name, xs] of got) {
    const ratios = xs.map((x, k) => x / (base[k] as number));
    log(`SUMMARY ${name}: median ${Math.round(median(xs))} req/s; median ratio to ${list[list.length - 1]} ${(median(ratios) * 100).toFixed(0)} % (rounds ${ratios.map((x) => (x * 100).toFixed(0)).join(' ')})`);
  }
}

async function once(variant: string): Promise<number> {
  const o = benchOptions([], process.env);
  const env: Record<string, string> = VARIANTS[variant] ?? Object.fromEntries(variant.split(',').map((kv) => kv.split('=') as [string, string]));
  const { child, url } = await startChild(o, { name: variant, env });
  const issuer = await loadDevIssuer(ISSUER_DIR);
  const token = await issuer.mint({ org: 'RB01', role: 'clinician', audience: BENCH_AUDIENCE, expiresInSeconds: 3600 });
  const patients = benchPatients(o.patients);
  const NHS = 'https://fhir.nhs.uk/Id/nhs-number';
  const run = (seconds: number): Promise<autocannon.Result> =>
    autocannon({
      url,
      connections: o.connections,
      duration: seconds,
      headers: { authorization: `Bearer ${token}` },
      requests: [{ method: 'GET', setupRequest: (req) => ({ ...req, path: `/fhir/ImagingStudy?patient.identifier=${encodeURIComponent(`${NHS}|${patients[Math.floor(Math.random() * patients.length)] as string}`)}` }) }],
    });
  await run(Number(process.env.WARM ?? 3));
  const stat0 = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.split(/\s+/).slice(1).map(Number);
  const pg = postgresPids();
  const kindOf = (pid: number): string => {
    try {
      const c = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      return /autovacuum worker/.test(c) ? 'autovacuum' : /checkpointer|background writer|walwriter|wal writer/.test(c) ? 'wal+checkpoint' : /postgres: \d+\/main: \w+ \w+ /.test(c) ? 'backends' : 'other';
    } catch {
      return 'gone';
    }
  };
  const byKind0 = new Map<number, number>(pg.map((p) => [p, cpuOf(p)]));
  const before = { node: cpuOf(child.pid as number), pg: pg.reduce((s, p) => s + cpuOf(p), 0), self: process.cpuUsage(), calls: syscallsOf(child.pid as number) };
  const t0 = Date.now();
  // CPU accounting wants longer loads than the bench's slices.
  const r = await run(Math.max(12, o.loadSeconds));
  const secs = (Date.now() - t0) / 1000;
  const pg2 = postgresPids();
  const selfUse = process.cpuUsage(before.self);
  const nodeCpu = cpuOf(child.pid as number) - before.node;
  const calls = syscallsOf(child.pid as number);
  const pgCpu = pg2.reduce((s, p) => s + cpuOf(p), 0) - before.pg;
  const kinds = new Map<string, number>();
  for (const p of pg2) kinds.set(kindOf(p), (kinds.get(kindOf(p)) ?? 0) + cpuOf(p) - (byKind0.get(p) ?? 0));
  const n = r.requests.total;
  const stat1 = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.split(/\s+/).slice(1).map(Number);
  const d = stat1.map((v, k) => v - (stat0[k] as number));
  const all = d.reduce((a, b) => a + b, 0);
  const pct = (k: number): string => `${(((d[k] as number) / all) * 100).toFixed(0)}%`;
  log(`${variant}: ${Math.round(n / secs)} req/s, p50 ${r.latency.p50} p99 ${r.latency.p99} ms`);
  const per = (cpu: number): string => `${((cpu / n) * 1e6).toFixed(0)} µs/req (${((cpu / secs) * 100).toFixed(0)} % of a core)`;
  log(`  box: user ${pct(0)} system ${pct(2)} idle ${pct(3)} iowait ${pct(4)} softirq ${pct(6)} steal ${pct(7)}`);
  log(`  postgres by process: ${[...kinds].map(([k, v]) => `${k} ${((v / n) * 1e6).toFixed(0)} µs/req`).join(', ')}`);
  log(`  registry system calls per request: ${((calls.reads - before.calls.reads) / n).toFixed(2)} reads, ${((calls.writes - before.calls.writes) / n).toFixed(2)} writes; context switches per request: ${((calls.preempted - before.calls.preempted) / n).toFixed(2)} preempted, ${((calls.waits - before.calls.waits) / n).toFixed(2)} waiting`);
  log(`  registry ${per(nodeCpu)}; postgres ${per(pgCpu)}; load generator ${per((selfUse.user + selfUse.system) / 1e6)}`);
  await stopChild(child);
  return n / secs;
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
