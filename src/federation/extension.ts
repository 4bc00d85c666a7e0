import type { LocusExtension } from '../extensions';
import type { FederationConfig } from './federation-config';
import { attachFederation, createFederation } from './federation';
import { createPeerTokens } from './peer-token';

/** Where peers fetch the key that verifies Locus's client-credentials tokens (their LOCUS_TRUSTED_ISSUERS jwksUri). */
export const FEDERATION_JWKS_PATH = '/.well-known/locus-federation-jwks.json';

/** MHD "Target Communities" federated query: fan-out from searches, and Locus's public key for peers. */
export function federationExtension(config: FederationConfig): LocusExtension {
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
