import { createLocalJWKSet, createRemoteJWKSet, decodeJwt, decodeProtectedHeader, errors, jwtVerify } from 'jose';
import type { JWTPayload, JWTVerifyGetKey } from 'jose';
import { z } from 'zod';
import type { TrustedIssuer } from '../config';
import { FhirError } from '../fhir/errors';
import type { Principal, Role } from './principal';
import { ROLES, parseScopes } from './principal';

/** What a failed verification could still tell the audit trail about the caller (unverified). */
export interface UnverifiedIdentity {
  issuer?: string;
  subject?: string;
  organization?: string;
}

export class TokenError extends FhirError {
  constructor(
    diagnostics: string,
    readonly claimed: UnverifiedIdentity,
  ) {
    super(401, 'login', diagnostics, 'MISSING_OR_INVALID_HEADER');
  }
}

const iuaSchema = z
  .object({
    subject_organization_id: z.string().optional(),
    subject_role: z.union([z.string(), z.object({ code: z.string() }).loose()]).optional(),
    purpose_of_use: z.union([z.string(), z.object({ code: z.string() }).loose()]).optional(),
    subject_name: z.string().optional(),
  })
  .loose();

/**
 * Claims Locus reads. The organisation may be sent as IHE IUA `extensions.ihe_iua.
 * subject_organization_id` or a plain `org` claim; role and purpose of use likewise.
 */
const claimsSchema = z
  .object({
    sub: z.string().min(1).max(256),
    scope: z.string().max(4096).default(''),
    org: z.string().optional(),
    role: z.string().optional(),
    purpose_of_use: z.string().optional(),
    break_glass_reason: z.string().max(1000).optional(),
    client_id: z.string().max(256).optional(),
    jti: z.string().max(256).optional(),
    name: z.string().max(256).optional(),
    extensions: z.object({ ihe_iua: iuaSchema.optional() }).loose().optional(),
  })
  .loose();

const codeOf = (v: string | { code: string } | undefined): string | undefined => (typeof v === 'string' ? v : v?.code);

export interface TokenVerifier {
  verify(token: string, breakGlassHeader?: string): Promise<Principal>;
}

export interface VerifierOptions {
  audience: string;
  issuers: TrustedIssuer[];
  allowedAlgs: string[];
  clockToleranceSeconds?: number;
}

export function createTokenVerifier(options: VerifierOptions): TokenVerifier {
  const keySets = new Map<string, { getKey: JWTVerifyGetKey; issuer: TrustedIssuer }>();
  for (const issuer of options.issuers) {
    const getKey = issuer.jwks
      ? createLocalJWKSet(issuer.jwks as Parameters<typeof createLocalJWKSet>[0])
      : createRemoteJWKSet(new URL(issuer.jwksUri as string), { timeoutDuration: 3000, cooldownDuration: 30_000 });
    keySets.set(issuer.issuer, { getKey, issuer });
  }

  const cache = new VerifiedTokenCache((options.clockToleranceSeconds ?? 30) * 1000);
  return {
    async verify(token: string, breakGlassHeader?: string): Promise<Principal> {
      const key = breakGlassHeader ? `${token} ${breakGlassHeader}` : token;
      const hit = cache.get(key);
      if (hit) return hit;
      const principal = await verifyOnce(token, breakGlassHeader);
      cache.set(key, principal);
      return principal;
    },
  };

  async function verifyOnce(token: string, breakGlassHeader?: string): Promise<Principal> {
      const claimed = readUnverified(token);
      if (!/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(token)) {
        throw new TokenError('the bearer token is not a compact JWS', claimed);
      }
      let alg: string | undefined;
      try {
        alg = decodeProtectedHeader(token).alg;
      } catch {
        throw new TokenError('the bearer token header cannot be read', claimed);
      }
      // Only asymmetric algorithms from the allow-list: `none` and HMAC with a public key as the
      // secret are the classic forgeries.
      if (!alg || !options.allowedAlgs.includes(alg)) {
        throw new TokenError(`token algorithm ${alg ?? '(none)'} is not accepted`, claimed);
      }
      const entry = claimed.issuer ? keySets.get(claimed.issuer) : undefined;
      if (!entry) throw new TokenError('the token issuer is not trusted', claimed);

      let payload: JWTPayload;
      try {
        ({ payload } = await jwtVerify(token, entry.getKey, {
          issuer: entry.issuer.issuer,
          audience: options.audience,
          algorithms: options.allowedAlgs,
          requiredClaims: ['exp', 'sub'],
          clockTolerance: options.clockToleranceSeconds ?? 30,
        }));
      } catch (e) {
        throw new TokenError(describeJoseError(e), claimed);
      }
      return { ...toPrincipal(payload, entry.issuer, claimed, breakGlassHeader), expiresAt: (payload.exp as number) * 1000 };
  }
}

/**
 * Verified tokens, kept until they expire (at most a minute): a viewer sends the same bearer
 * token with every request, and an ES256 verification costs more than the search it guards.
 * Keyed by the exact token text (and break-glass reason), so nothing unverified is ever served.
 */
class VerifiedTokenCache {
  private readonly entries = new Map<string, { principal: Principal; until: number }>();
  private static readonly MAX_ENTRIES = 10_000;
  private static readonly MAX_AGE_MS = 60_000;

  constructor(private readonly toleranceMs: number) {}

  get(key: string): Principal | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    if (Date.now() >= e.until) {
      this.entries.delete(key);
      return undefined;
    }
    return e.principal;
  }

  set(key: string, principal: Principal): void {
    if (this.entries.size >= VerifiedTokenCache.MAX_ENTRIES) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
    const until = Math.min((principal.expiresAt ?? 0) + this.toleranceMs, Date.now() + VerifiedTokenCache.MAX_AGE_MS);
    if (until > Date.now()) this.entries.set(key, { principal, until });
  }
}

function toPrincipal(payload: JWTPayload, issuer: TrustedIssuer, claimed: UnverifiedIdentity, breakGlassHeader?: string): Principal {
  const parsed = claimsSchema.safeParse(payload);
  if (!parsed.success) throw new TokenError('the token claims are malformed', claimed);
  const c = parsed.data;
  const iua = c.extensions?.ihe_iua;
  const organization = (iua?.subject_organization_id ?? c.org ?? '').toUpperCase();
  if (!/^[A-Z0-9]{1,10}$/.test(organization)) {
    throw new TokenError('the token names no organisation (ODS code)', claimed);
  }
  if (!issuer.organizations.includes('*') && !issuer.organizations.includes(organization)) {
    throw new TokenError(`issuer ${issuer.issuer} may not assert organisation ${organization}`, claimed);
  }
  const roleCode = codeOf(iua?.subject_role) ?? c.role ?? '';
  if (!(ROLES as readonly string[]).includes(roleCode)) {
    throw new TokenError(`the token role ${roleCode || '(none)'} is not one Locus knows`, claimed);
  }
  const purposeOfUse = (codeOf(iua?.purpose_of_use) ?? c.purpose_of_use ?? 'TREAT').toUpperCase();
  const reason = (c.break_glass_reason ?? breakGlassHeader)?.trim();
  return {
    subject: c.sub,
    issuer: issuer.issuer,
    organization,
    role: roleCode as Role,
    scopes: parseScopes(c.scope),
    purposeOfUse,
    breakGlassReason: purposeOfUse === 'ETREAT' && reason && reason.length >= 10 ? reason : undefined,
    clientId: c.client_id,
    tokenId: c.jti,
    userName: iua?.subject_name ?? c.name,
  };
}

function readUnverified(token: string): UnverifiedIdentity {
  try {
    const p = decodeJwt(token);
    const iua = (p.extensions as { ihe_iua?: { subject_organization_id?: unknown } } | undefined)?.ihe_iua;
    const org = iua?.subject_organization_id ?? p.org;
    return {
      issuer: typeof p.iss === 'string' ? p.iss.slice(0, 256) : undefined,
      subject: typeof p.sub === 'string' ? p.sub.slice(0, 256) : undefined,
      organization: typeof org === 'string' ? org.slice(0, 16) : undefined,
    };
  } catch {
    return {};
  }
}

function describeJoseError(e: unknown): string {
  if (e instanceof errors.JWTExpired) return 'the token has expired';
  if (e instanceof errors.JWTClaimValidationFailed) {
    if (e.claim === 'nbf') return 'the token is not yet valid';
    if (e.claim === 'aud') return 'the token audience is not this registry';
    if (e.claim === 'iss') return 'the token issuer is not trusted';
    return `the token claim ${e.claim} is invalid`;
  }
  if (e instanceof errors.JWSSignatureVerificationFailed) return 'the token signature is invalid';
  if (e instanceof errors.JOSEAlgNotAllowed) return 'the token algorithm is not accepted';
  if (e instanceof errors.JWKSNoMatchingKey) return 'no key of the issuer matches the token';
  if (e instanceof errors.JWKSTimeout) return 'the issuer key set could not be fetched in time';
  return 'the token could not be verified';
}
