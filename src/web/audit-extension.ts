import type { DevIssuer } from '../access/dev-issuer';
import { loadDevIssuer } from '../access/dev-issuer';
import { AUDIT_PARAMS } from '../audit/audit-query';
import type { AppExtension } from '../fhir/app';
import { registerCapability } from '../fhir/capability';
import type { AppDeps } from '../fhir/pipeline';
import { fhirExportHandler } from './audit-export';
import { mountAuditPage } from './audit-page';
import { auditRoutes } from './audit-routes';

let registered = false;

function registerAuditCapability(): void {
  if (registered) return;
  registered = true;
  registerCapability({
    resources: [
      {
        type: 'AuditEvent',
        profile: 'https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.Query',
        documentation:
          'The audit trail (IHE BALP). auditor role only. _sort=date|-date (default -date), _count, keyset paging by next links. Export: _format=csv or ndjson (or Accept text/csv, application/fhir+ndjson), streamed.',
        interaction: [{ code: 'read' }, { code: 'search-type' }],
        searchParam: AUDIT_PARAMS.map((p) => ({ name: p.name, type: p.type, documentation: p.documentation })),
      },
    ],
  });
}

export interface AuditExtensionOptions {
  /** The server's development issuer, for the page's dev sign-in button. */
  devIssuer?: DevIssuer;
}

/**
 * The development issuer the page may mint with: the one handed in, else (embedded default) the
 * one kept in the data directory. Either way it is used only if the server's verifier accepts
 * what it mints, so the button never appears when it could not work.
 */
function devIssuerResolver(deps: AppDeps, given?: DevIssuer): () => Promise<DevIssuer | undefined> {
  let resolved: Promise<DevIssuer | undefined> | undefined;
  const resolve = async (): Promise<DevIssuer | undefined> => {
    const candidate = given ?? (deps.config.devIssuer && !deps.config.databaseUrl ? await loadDevIssuer(deps.config.dataDir) : undefined);
    if (!candidate) return undefined;
    try {
      const probe = await candidate.mint({ org: 'X26', role: 'auditor', audience: deps.config.audience, expiresInSeconds: 60 });
      await deps.verifier.verify(probe);
      return candidate;
    } catch {
      return undefined;
    }
  };
  return () => (resolved ??= resolve());
}

/** Issue 3: AuditEvent search and read, streamed CSV/NDJSON export, and the /audit review page. */
export function auditExtension(options: AuditExtensionOptions = {}): AppExtension {
  registerAuditCapability();
  return {
    routes: auditRoutes,
    mount(app, deps) {
      // Exports stream, so they are plain express routes in front of the JSON search route.
      app.get('/fhir/AuditEvent', fhirExportHandler(deps));
      mountAuditPage(app, deps, { devIssuer: devIssuerResolver(deps, options.devIssuer) });
    },
  };
}
