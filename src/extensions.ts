import type { DevIssuer } from './access/dev-issuer';
import type { AppExtension } from './fhir/app';
import type { AppDeps } from './fhir/pipeline';
import { federationExtension } from './federation/extension';
import { loadFederationConfig } from './federation/federation-config';
import { notifyExtension } from './notify/extension';
import { loadNotifyOptions } from './notify/notify-config';
import { resolveExtension } from './resolve/resolve-extension';
import { auditExtension } from './web/audit-extension';

/** What extensions may need from the server that builds them (server.ts can pass its dev issuer). */
export interface ExtensionOptions {
  devIssuer?: DevIssuer;
  /** Where federation and notification settings are read from (default: process.env). */
  env?: NodeJS.ProcessEnv;
}

/** Work an extension runs beside the HTTP server (the notification worker); the server starts and stops it. */
export interface BackgroundWork {
  start(deps: AppDeps): void;
  stop(deps: AppDeps): Promise<void>;
}

export type LocusExtension = AppExtension & { background?: BackgroundWork };

/** Capabilities beyond the registry core plug in here (audit review, consent, resolve, ...). */
export function extensions(options: ExtensionOptions = {}): LocusExtension[] {
  const env = options.env ?? process.env;
  const federation = loadFederationConfig(env);
  return [
    auditExtension({ devIssuer: options.devIssuer }),
    resolveExtension(),
    notifyExtension(loadNotifyOptions(env)),
    ...(federation ? [federationExtension(federation)] : []),
  ];
}
