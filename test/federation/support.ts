import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair } from 'jose';
import type { JWK } from 'jose';
import type { NetworkPolicy } from '../../src/access/network-policy';
import type { FederationConfig, PeerConfig } from '../../src/federation/federation-config';
import type { TestServer } from '../helpers/server';

export const HOME = 'urn:oid:2.16.840.1.113883.3.9901.1';
export const WALES = 'urn:oid:2.16.840.1.113883.3.9901.2';
export const EAST = 'urn:oid:2.16.840.1.113883.3.9901.3';
export const HANGS = 'urn:oid:2.16.840.1.113883.3.9901.4';
export const FAILS = 'urn:oid:2.16.840.1.113883.3.9901.5';
export const GARBAGE = 'urn:oid:2.16.840.1.113883.3.9901.6';
/** Locus's organisation as the peers know it. */
export const LOCUS_ORG = 'LWM01';
export const LOCUS_ISSUER = 'urn:locus:federation:LWM01';

export async function federationKey(): Promise<{ privateJwk: JWK; publicJwk: JWK }> {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  return { privateJwk: { ...(await exportJWK(privateKey)), kid: 'fed-1', alg: 'ES256' }, publicJwk: { ...(await exportJWK(publicKey)), kid: 'fed-1', alg: 'ES256' } };
}

/** What a peer Locus is configured with to accept Locus's tokens (only for Locus's organisation). */
export function trustLocus(publicJwk: JWK): Record<string, string> {
  return { LOCUS_TRUSTED_ISSUERS: JSON.stringify([{ issuer: LOCUS_ISSUER, jwks: { keys: [publicJwk] }, organizations: [LOCUS_ORG] }]) };
}

export function federationConfig(privateJwk: JWK, peers: PeerConfig[], timeoutMs = 3000): FederationConfig {
  return { homeCommunityId: HOME, organization: LOCUS_ORG, issuer: LOCUS_ISSUER, clientId: 'locus-lwm01', privateJwk: privateJwk as FederationConfig['privateJwk'], timeoutMs, peers };
}

export async function addAgreement(s: TestServer, id: string, provider: string, recipient: string, categories: string[] = []): Promise<void> {
  await s.db.query(
    `insert into sharing_agreement (id, provider_ods, recipient_ods, categories, period_start, period_end, description)
     values ($1, $2, $3, $4, now() - interval '1 day', null, 'test agreement')`,
    [id, provider, recipient, categories],
  );
  await (s.locus.deps.policy as Partial<NetworkPolicy>).refresh?.();
}

/** Misbehaving peers on loopback: one that never answers, one that fails, one that answers nonsense. */
export class FakePeer {
  private server?: Server;
  requests = 0;
  constructor(private readonly behaviour: 'hang' | 'fail' | 'garbage') {}

  async start(): Promise<string> {
    const server = createServer((req, res) => {
      this.requests++;
      req.resume();
      if (this.behaviour === 'hang') return;
      if (this.behaviour === 'fail') {
        res.writeHead(500, { 'content-type': 'application/fhir+json' });
        res.end(JSON.stringify({ resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'exception' }] }));
        return;
      }
      res.writeHead(200, { 'content-type': 'application/fhir+json' });
      res.end(JSON.stringify({ resourceType: 'Bundle', type: 'searchset', entry: [{ resource: { resourceType: 'Patient', id: 'x' }, search: { mode: 'match' } }] }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    this.server = server;
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}/fhir`;
  }

  async stop(): Promise<void> {
    const s = this.server;
    if (!s) return;
    await new Promise<void>((resolve) => {
      s.close(() => resolve());
      s.closeAllConnections();
    });
  }
}
