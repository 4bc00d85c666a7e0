import { loadDevIssuer } from '../src/access/dev-issuer';
import { allowAllPolicy } from '../src/access/policy';
import type { Config } from '../src/config';
import { loadConfig } from '../src/config';
import { startLocus } from '../src/server';
import { BENCH_AUDIENCE, DEFAULT_DATABASE_URL, ISSUER_DIR, openBenchDatabase } from './common';

/**
 * The server under load, in its own process so that the load generator does not share its event
 * loop. Configured as in service (environment, pool size, auditing, the default policy), except:
 * the bench schema, the benchmark's development issuer, and the two switches being measured:
 * LOCUS_AUDIT=false and LOCUS_BENCH_POLICY=allow-all. Tells its parent the URL over IPC.
 */
export interface ChildReady {
  ready: true;
  url: string;
  audit: boolean;
  policy: 'network' | 'allow-all';
}

async function main(): Promise<void> {
  const env = { ...process.env, PORT: '0', HOST: '127.0.0.1', LOCUS_AUDIENCE: BENCH_AUDIENCE, DATABASE_URL: process.env.DATABASE_URL ?? DEFAULT_DATABASE_URL };
  const base = loadConfig(env);
  const issuer = await loadDevIssuer(ISSUER_DIR);
  const config: Config = { ...base, trustedIssuers: [...base.trustedIssuers, issuer.trusted], devIssuer: false };
  const db = await openBenchDatabase(config.databaseUrl as string, config.poolSize, process.env.BENCH_SERVER_SCHEMA || undefined);
  const policyName = process.env.LOCUS_BENCH_POLICY === 'allow-all' ? 'allow-all' : 'network';
  // Without `policy` startLocus applies the production default, networkPolicy(db).
  const locus = await startLocus(config, { db, ...(policyName === 'allow-all' ? { policy: allowAllPolicy } : {}) });
  const stop = (): void => {
    void locus.close().then(() => db.close()).finally(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('disconnect', stop);
  const ready: ChildReady = { ready: true, url: locus.url, audit: config.audit, policy: policyName };
  process.send?.(ready);
}

main().catch((e: unknown) => {
  process.stderr.write(`bench server: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
