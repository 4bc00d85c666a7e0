import type { DevIssuer } from './access/dev-issuer';
import type { AppExtension } from './fhir/app';
import { resolveExtension } from './resolve/resolve-extension';
import { auditExtension } from './web/audit-extension';

/** What extensions may need from the server that builds them (server.ts can pass its dev issuer). */
export interface ExtensionOptions {
  devIssuer?: DevIssuer;
}

/** Capabilities beyond the registry core plug in here (audit review, consent, resolve, ...). */
export function extensions(options: ExtensionOptions = {}): AppExtension[] {
  return [auditExtension({ devIssuer: options.devIssuer }), resolveExtension()];
}
