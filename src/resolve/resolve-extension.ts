import type { AppExtension } from '../fhir/app';
import { registerCapability } from '../fhir/capability';
import { mountGateway } from '../gateway/gateway';
import { mountViewer } from '../web/viewer-page';
import { resolveRoutes } from './resolve-routes';
import { JWKS_MAX_AGE_SECONDS } from './retrieval-keys';
import { resolveState } from './resolve-state';

export const RESOLVE_OPERATION_DEFINITION = 'https://locus.nhs.example/fhir/OperationDefinition/resolve';

let registered = false;

function registerResolveCapability(): void {
  if (registered) return;
  registered = true;
  const operation = {
    name: 'resolve',
    definition: RESOLVE_OPERATION_DEFINITION,
    documentation:
      "GET [type]/[id]/$resolve: the custodian's WADO-RS study URL and QIDO-RS URL, this registry's DICOMweb gateway URL, the viewer launch URL, and a short-lived ES256 retrieval token (keys at /.well-known/jwks.json). Consent and sharing rules apply as for read: a withheld pointer is 404.",
  };
  // Folded into the core's ImagingStudy and DocumentReference entries by capability.ts.
  registerCapability({
    resources: [
      { type: 'ImagingStudy', interaction: [{ code: 'read' }], operation: [operation] },
      { type: 'DocumentReference', interaction: [{ code: 'read' }], operation: [operation] },
    ],
  });
}

/**
 * Issue 6: `$resolve`, the registry's signing keys at /.well-known/jwks.json, the DICOMweb
 * gateway at /dicomweb, and the clinicians' prior-imaging page at /viewer.
 */
export function resolveExtension(): AppExtension {
  registerResolveCapability();
  return {
    routes: resolveRoutes,
    mount(app, deps) {
      const state = resolveState(deps);
      app.get('/.well-known/jwks.json', async (_req, res) => {
        try {
          const jwks = await state.keys.publicJwks();
          res.setHeader('cache-control', `public, max-age=${JWKS_MAX_AGE_SECONDS}`);
          res.setHeader('content-type', 'application/jwk-set+json');
          res.send(JSON.stringify(jwks));
        } catch (e) {
          deps.logger.error({ err: e instanceof Error ? e.message : String(e) }, 'retrieval keys unavailable');
          res.status(503).setHeader('retry-after', '5');
          res.json({ error: 'the signing keys cannot be read just now' });
        }
      });
      mountGateway(app, deps);
      mountViewer(app, deps);
    },
  };
}
