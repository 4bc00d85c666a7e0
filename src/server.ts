import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { PointerPolicy } from './access/policy';
import { loadDevIssuer } from './access/dev-issuer';
import type { DevIssuer } from './access/dev-issuer';
import { createTokenVerifier } from './access/tokens';
import { createAuditWriter } from './audit/audit-store';
import type { Config } from './config';
import type { AppExtension } from './fhir/app';
import { createHandler } from './fhir/app';
import type { AppDeps } from './fhir/pipeline';
import type { Logger } from './log';
import { createLogger } from './log';
import type { Database } from './store/database';
import { openDatabase } from './store/open';
import { networkPolicy } from './access/network-policy';
import { extensions } from './extensions';
import type { LocusExtension } from './extensions';

export interface Locus {
  deps: AppDeps;
  devIssuer?: DevIssuer;
  server: Server;
  url: string;
  close(): Promise<void>;
}

export interface StartOptions {
  db?: Database;
  policy?: PointerPolicy;
  logger?: Logger;
  extraExtensions?: AppExtension[];
}

/** Builds every dependency from the configuration, then listens. */
export async function startLocus(config: Config, options: StartOptions = {}): Promise<Locus> {
  const logger = options.logger ?? createLogger(config.logLevel);
  const db = options.db ?? (await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, poolSize: config.poolSize }));
  const devIssuer = config.devIssuer ? await loadDevIssuer(config.databaseUrl ? undefined : config.dataDir) : undefined;
  const issuers = [...config.trustedIssuers, ...(devIssuer ? [devIssuer.trusted] : [])];
  const verifier = createTokenVerifier({ audience: config.audience, issuers, allowedAlgs: config.allowedAlgs });
  const policy = options.policy ?? networkPolicy(db);
  await policy.refresh?.();
  const deps: AppDeps = { db, config, verifier, policy, audit: createAuditWriter(config.audit), logger };
  const all: LocusExtension[] = [...extensions(), ...(options.extraExtensions ?? [])];
  const server = createServer(createHandler(deps, all));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.keepAliveTimeout = 65_000;
  const { port } = server.address() as AddressInfo;
  // Background work (the notification worker) runs while the server does.
  for (const e of all) e.background?.start(deps);
  return {
    deps,
    devIssuer,
    server,
    url: `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`,
    async close() {
      for (const e of all) await e.background?.stop(deps);
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      policy.close?.();
      if (!options.db) await db.close();
    },
  };
}
