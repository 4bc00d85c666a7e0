import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import autocannon from 'autocannon';
import type { DevIssuer } from '../src/access/dev-issuer';
import { BENCH_AUDIENCE, compileRegistry, log } from './common';
import type { BenchOptions } from './common';
import type { ChildReady } from './server-child';

/** Patient-search load against a server in a child process (the load generator on the same box). */
export interface LoadVariant {
  name: string;
  env: Record<string, string>;
}

export interface LoadResult {
  variant: string;
  requests: number;
  perSecond: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  errors: number;
  non2xx: number;
  meanBytes: number;
  /** req/s of each round, to show the spread. */
  rounds: number[];
}

const NHS = 'https://fhir.nhs.uk/Id/nhs-number';

/** The registry in its own process, compiled, configured as in service plus the variant's switches. */
export async function startChild(o: BenchOptions, variant: LoadVariant): Promise<{ child: ChildProcess; url: string }> {
  const execArgv = process.env.BENCH_CHILD_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CHILD_CPU_PROF}`] : [];
  const child = fork(join(compileRegistry(), 'bench', 'server-child.js'), [], {
    execArgv,
    // The server logs one line per request, as in service; the lines go nowhere here.
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    env: { ...process.env, DATABASE_URL: o.databaseUrl, DATABASE_POOL_SIZE: String(o.poolSize), ...variant.env },
  });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the bench server did not start within 60 s')), 60_000);
    child.once('message', (m: ChildReady) => {
      clearTimeout(timer);
      resolve(m.url);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the bench server exited with code ${code} before it was ready`));
    });
  });
  return { child, url };
}

export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

interface Sample {
  seconds: number;
  requests: number;
  errors: number;
  non2xx: number;
  bytes: number;
  times: number[];
}

export async function cannon(url: string, token: string, patients: readonly string[], connections: number, seconds: number): Promise<Sample> {
  // autocannon reports p97.5 and p99 but not p95: every response time is kept here instead.
  const times: number[] = [];
  let bytes = 0;
  let done: (r: autocannon.Result) => void = () => undefined;
  let failed: (e: unknown) => void = () => undefined;
  const finished = new Promise<autocannon.Result>((resolve, reject) => {
    done = resolve;
    failed = reject;
  });
  const instance = autocannon(
    {
      url,
      connections,
      duration: seconds,
      headers: { authorization: `Bearer ${token}`, accept: 'application/fhir+json' },
      requests: [
        {
          method: 'GET',
          setupRequest: (req) => {
            const nhs = patients[Math.floor(Math.random() * patients.length)] as string;
            return { ...req, path: `/fhir/ImagingStudy?patient.identifier=${encodeURIComponent(`${NHS}|${nhs}`)}` };
          },
        },
      ],
    },
    (err: unknown, result: autocannon.Result) => (err ? failed(err) : done(result)),
  );
  instance.on('response', (_client: unknown, _status: number, resBytes: number, responseTime: number) => {
    times.push(responseTime);
    bytes += resBytes;
  });
  const result = await finished;
  return { seconds, requests: result.requests.total, errors: result.errors + result.timeouts, non2xx: result.non2xx, bytes, times };
}

/** Rounds of one variant pooled: throughput over all measured seconds, percentiles over all responses. */
export function pool(variant: string, samples: Sample[]): LoadResult {
  const times = Float64Array.from(samples.flatMap((x) => x.times)).sort();
  const requests = samples.reduce((n, x) => n + x.requests, 0);
  return {
    variant,
    requests,
    perSecond: requests / samples.reduce((n, x) => n + x.seconds, 0),
    p50: percentile(times, 50),
    p95: percentile(times, 95),
    p99: percentile(times, 99),
    max: times[times.length - 1] ?? 0,
    errors: samples.reduce((n, x) => n + x.errors, 0),
    non2xx: samples.reduce((n, x) => n + x.non2xx, 0),
    meanBytes: times.length ? samples.reduce((n, x) => n + x.bytes, 0) / times.length : 0,
    rounds: samples.map((x) => x.requests / x.seconds),
  };
}

/** Starts a variant's server and checks that one search answers 200 with entries. */
async function startChecked(o: BenchOptions, variant: LoadVariant, token: string, patients: readonly string[]): Promise<{ child: ChildProcess; url: string }> {
  const started = await startChild(o, variant);
  try {
    const probe = await fetch(`${started.url}/fhir/ImagingStudy?patient.identifier=${encodeURIComponent(`${NHS}|${patients[0] as string}`)}`, { headers: { authorization: `Bearer ${token}` } });
    const body = (await probe.json()) as { entry?: unknown[] };
    if (probe.status !== 200 || !body.entry?.length) throw new Error(`a probe search answered HTTP ${probe.status} with ${body.entry?.length ?? 0} entries`);
    return started;
  } catch (e) {
    await stopChild(started.child);
    throw e;
  }
}

/**
 * The variants' loads in short slices taken in turn, each variant on its own server, all servers
 * up for the whole run (an idle one costs the box nothing). The host's speed drifts by tens of
 * per cent over a minute (other tenants, checkpoints), more than the effects measured; slices a
 * few seconds apart see nearly the same host, so the ratio of neighbouring slices is what the
 * figures are made of (their median over the rounds). Guards against order effects: every server
 * gets the same untimed warm-up load first, and each round starts one variant further on
 * (A B C, B C A, C A B, ...).
 */
export async function runLoads(o: BenchOptions, issuer: DevIssuer, patients: readonly string[], variants: LoadVariant[]): Promise<LoadResult[]> {
  const samples = variants.map((): Sample[] => []);
  const token = await issuer.mint({ org: 'RB01', role: 'clinician', audience: BENCH_AUDIENCE, expiresInSeconds: 3600 });
  const servers: { child: ChildProcess; url: string }[] = [];
  try {
    for (const v of variants) servers.push(await startChecked(o, v, token, patients));
    if (o.warmupSeconds > 0) {
      log(`warm-up load (untimed): ${o.connections} connections for ${o.warmupSeconds * 3} s on each of the ${variants.length} servers`);
      for (const s of servers) await cannon(s.url, token, patients, o.connections, o.warmupSeconds * 3);
    }
    log(`${o.rounds} rounds of ${o.connections} connections for ${o.loadSeconds} s on each server in turn`);
    for (let round = 1; round <= o.rounds; round++) {
      const line: string[] = [];
      for (let k = 0; k < variants.length; k++) {
        const i = (k + round - 1) % variants.length;
        const r = await cannon((servers[i] as { url: string }).url, token, patients, o.connections, o.loadSeconds);
        samples[i]?.push(r);
        line.push(`${(variants[i] as LoadVariant).name.split(' (')[0]} ${Math.round(r.requests / r.seconds)}`);
      }
      log(`  round ${round}: ${line.join(' · ')} req/s`);
    }
  } finally {
    for (const s of servers) await stopChild(s.child);
  }
  return variants.map((v, i) => pool(v.name, samples[i] ?? []));
}
