import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { SignJWT, exportJWK, generateKeyPair, importJWK } from 'jose';
import type { JWK } from 'jose';
import type { TrustedIssuer } from '../config';
import type { Role } from './principal';
import { ROLE_SCOPES } from './principal';

/**
 * The embedded default's development issuer: an ES256 key kept in the data directory, so that
 * `locus token` and the server agree without any identity provider. Off in production unless
 * LOCUS_DEV_ISSUER=true.
 */
export const DEV_ISSUER = 'urn:locus:dev-issuer';

export interface DevIssuer {
  trusted: TrustedIssuer;
  mint(claims: DevTokenClaims): Promise<string>;
}

export interface DevTokenClaims {
  org: string;
  role: Role;
  sub?: string;
  scope?: string;
  purposeOfUse?: string;
  breakGlassReason?: string;
  audience: string;
  expiresInSeconds?: number;
  name?: string;
}

interface KeyFile {
  privateJwk: JWK;
  publicJwk: JWK;
}

async function newKeyFile(): Promise<KeyFile> {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  const kid = randomUUID();
  return {
    privateJwk: { ...(await exportJWK(privateKey)), kid, alg: 'ES256' },
    publicJwk: { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' },
  };
}

/** Loads the key from `dir/dev-issuer-key.json`, creating it on first use; in memory without a dir. */
export async function loadDevIssuer(dir?: string): Promise<DevIssuer> {
  let keys: KeyFile;
  if (dir) {
    const file = join(dir, 'dev-issuer-key.json');
    if (existsSync(file)) {
      keys = JSON.parse(readFileSync(file, 'utf8')) as KeyFile;
    } else {
      mkdirSync(dir, { recursive: true });
      keys = await newKeyFile();
      writeFileSync(file, JSON.stringify(keys), { mode: 0o600 });
    }
  } else {
    keys = await newKeyFile();
  }
  const privateKey = await importJWK(keys.privateJwk, 'ES256');
  return {
    trusted: { issuer: DEV_ISSUER, jwks: { keys: [keys.publicJwk as Record<string, unknown>] }, organizations: ['*'] },
    async mint(c: DevTokenClaims): Promise<string> {
      const claims: Record<string, unknown> = {
        scope: c.scope ?? ROLE_SCOPES[c.role],
        client_id: 'locus-dev',
        extensions: {
          ihe_iua: { subject_organization_id: c.org, subject_role: c.role, purpose_of_use: c.purposeOfUse ?? 'TREAT', subject_name: c.name },
        },
      };
      if (c.breakGlassReason) claims.break_glass_reason = c.breakGlassReason;
      return new SignJWT(claims)
        .setProtectedHeader({ alg: 'ES256', kid: keys.publicJwk.kid, typ: 'JWT' })
        .setIssuer(DEV_ISSUER)
        .setSubject(c.sub ?? `${c.role}@${c.org}`)
        .setAudience(c.audience)
        .setIssuedAt()
        .setJti(randomUUID())
        .setExpirationTime(`${c.expiresInSeconds ?? 3600}s`)
        .sign(privateKey);
    },
  };
}
