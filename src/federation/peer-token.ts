import { randomUUID } from 'node:crypto';
import { SignJWT, importJWK } from 'jose';
import type { JWK } from 'jose';
import type { FederationConfig, PeerConfig } from './federation-config';

/** What a peer Locus (or any IUA-aware registry) needs to read the caller as a peer registry. */
export const PEER_SCOPES = 'system/ImagingStudy.rs system/DocumentReference.rs system/Endpoint.rs';
const LIFETIME_SECONDS = 300;

export interface PeerTokens {
  tokenFor(peer: PeerConfig): Promise<string>;
  /** The public half of the signing key, for the peers' trusted-issuer configuration. */
  publicJwks(): { keys: JWK[] };
}

/**
 * Client-credentials JWTs signed with Locus's own key (SMART Backend Services style, IUA claims):
 * the peer verifies them against Locus's public key like any other token. Cached per peer until
 * a minute before expiry: signing is cheap but not free on the fan-out path.
 */
export function createPeerTokens(config: FederationConfig): PeerTokens {
  const alg = config.privateJwk.alg ?? (config.privateJwk.kty === 'EC' ? 'ES256' : config.privateJwk.kty === 'OKP' ? 'EdDSA' : 'RS256');
  const key = importJWK(config.privateJwk as JWK, alg);
  const cache = new Map<string, { token: string; until: number }>();
  return {
    async tokenFor(peer) {
      const hit = cache.get(peer.communityId);
      if (hit && hit.until > Date.now()) return hit.token;
      const token = await new SignJWT({
        scope: PEER_SCOPES,
        client_id: config.clientId,
        extensions: { ihe_iua: { subject_organization_id: config.organization, subject_role: 'peer', purpose_of_use: 'TREAT' } },
      })
        .setProtectedHeader({ alg, typ: 'JWT', ...(config.privateJwk.kid ? { kid: config.privateJwk.kid } : {}) })
        .setIssuer(config.issuer)
        .setSubject(config.clientId)
        .setAudience(peer.audience ?? peer.fhirBase)
        .setIssuedAt()
        .setJti(randomUUID())
        .setExpirationTime(`${LIFETIME_SECONDS}s`)
        .sign(await key);
      cache.set(peer.communityId, { token, until: Date.now() + (LIFETIME_SECONDS - 60) * 1000 });
      return token;
    },
    publicJwks() {
      const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...pub } = config.privateJwk as JWK;
      return { keys: [{ ...pub, alg, use: 'sig' }] };
    },
  };
}
