import type { AppDeps } from '../fhir/pipeline';
import type { ResolveConfig } from './resolve-config';
import { loadResolveConfig } from './resolve-config';
import { loadKeyEncryptionKey } from './key-encryption';
import type { RetrievalKeys } from './retrieval-keys';
import { retrievalKeys } from './retrieval-keys';

/** What `$resolve`, the JWKS route, the gateway and the viewer page share for one server. */
export interface ResolveState {
  config: ResolveConfig;
  keys: RetrievalKeys;
}

const states = new WeakMap<AppDeps, ResolveState>();

/**
 * One key store per server (its database), made when the extension is mounted. The route
 * table is static, so the routes find it by the server's dependencies rather than a global.
 */
export function resolveState(deps: AppDeps, env: NodeJS.ProcessEnv = process.env): ResolveState {
  let s = states.get(deps);
  if (!s) {
    const config = loadResolveConfig(env);
    const kek = loadKeyEncryptionKey(config.keyEncryptionKey, { databaseUrl: deps.config.databaseUrl, dataDir: deps.config.dataDir });
    s = { config, keys: retrievalKeys(deps.db, { rotationSeconds: config.keyRotationSeconds, tokenTtlSeconds: config.tokenTtlSeconds, kek }) };
    states.set(deps, s);
  }
  return s;
}
