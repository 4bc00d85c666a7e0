import type { LocusExtension } from '../extensions';
import { registerCapability } from '../fhir/capability';
import type { FederationConfig } from './federation-config';
import { TARGET_PARAM, attachFederation, createFederation } from './federation';
import { createPeerTokens } from './peer-token';

/** Where peers fetch the key that verifies Locus's client-credentials tokens (their LOCUS_TRUSTED_ISSUERS jwksUri). */
export const FEDERATION_JWKS_PATH = '/.well-known/locus-federation-jwks.json';

let registered = false;

/** targetCommunityIdList on the pointer types' searches; only a server built with federation registers it. */
function registerFederationCapability(): void {
  if (registered) return;
  registered = true;
  const searchParam = [
    {
      name: TARGET_PARAM,
      type: 'token' as const,
      documentation:
        'MHD Target Communities: comma-separated peer community ids (urn:oid:...) or all. Per patient only; peers are asked in parallel and merged into the first page, each entry marked with its homeCommunityId; a missing community is named in a warning OperationOutcome entry.',
    },
  ];
  registerCapability({
    resources: [
      { type: 'ImagingStudy', interaction: [{ code: 'search-type' }], searchParam },
      { type: 'DocumentReference', interaction: [{ code: 'search-type' }], searchParam },
    ],
  });
}

/** MHD "Target Communities" federated query: fan-out from searches, and Locus's public key for peers. */
export function federationExtension(config: FederationConfig): LocusExtension {
  registerFederationCapability();
  const tokens = createPeerTokens(config);
  const federation = createFederation(config, tokens);
  return {
    mount(app, deps) {
      attachFederation(deps, federation);
      app.get(FEDERATION_JWKS_PATH, (_req, res) => {
        res.json(tokens.publicJwks());
      });
    },
  };
}
