import type { PointerPolicy } from '../../src/access/policy';
import type { Role } from '../../src/access/principal';
import type { DevTokenClaims } from '../../src/access/dev-issuer';
import { loadDevIssuer } from '../../src/access/dev-issuer';
import type { Config } from '../../src/config';
import { loadConfig } from '../../src/config';
import { seedDemo } from '../../src/demo/seed';
import type { AppExtension } from '../../src/fhir/app';
import type { Database } from '../../src/store/database';
import { createLogger } from '../../src/log';
import { startLocus } from '../../src/server';
import type { Locus } from '../../src/server';
import { testDatabase } from './db';

export interface TestServer {
  baseUrl: string;
  fhirBase: string;
  db: Database;
  locus: Locus;
  config: Config;
  tokenFor(org: string, role: Role, extra?: Partial<DevTokenClaims>): Promise<string>;
  close(): Promise<void>;
}

export interface TestServerOptions {
  demo?: boolean;
  policy?: PointerPolicy;
  env?: Record<string, string>;
  extensions?: AppExtension[];
}

/** A real Locus on a free loopback port, over a clean database (PGlite, or PostgreSQL with DATABASE_URL). */
export async function startTestServer(options: TestServerOptions = {}): Promise<TestServer> {
  const { db, drop } = await testDatabase();
  if (options.demo) await seedDemo(db);
  const base = loadConfig({ PORT: '0', HOST: '127.0.0.1', LOCUS_DEV_ISSUER: 'true', LOCUS_LOG_LEVEL: 'silent', LOCUS_AUDIENCE: 'urn:locus:test', ...options.env });
  const issuer = await loadDevIssuer();
  const config: Config = { ...base, trustedIssuers: [...base.trustedIssuers, issuer.trusted], devIssuer: false };
  const locus = await startLocus(config, { db, policy: options.policy, logger: createLogger('silent'), extraExtensions: options.extensions });
  // The listening port is known only now: the FHIR base the server advertises follows it.
  config.baseUrl = locus.url;
  return {
    baseUrl: locus.url,
    fhirBase: `${locus.url}/fhir`,
    db,
    locus,
    config,
    tokenFor: (org, role, extra) => issuer.mint({ org, role, audience: config.audience, ...extra }),
    async close() {
      await locus.close();
      await drop();
    },
  };
}
