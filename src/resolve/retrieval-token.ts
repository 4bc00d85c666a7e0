import { randomUUID } from 'node:crypto';
import { SignJWT, createLocalJWKSet, decodeProtectedHeader, errors, jwtVerify } from 'jose';
import { z } from 'zod';
import type { Principal } from '../access/principal';
import { ROLES } from '../access/principal';
import { FhirError } from '../fhir/errors';
import type { RetrievalKeys } from './retrieval-keys';

/** JOSE `typ` of a retrieval token, so it can never be mistaken for (or used as) an access token. */
export const RETRIEVAL_TOKEN_TYPE = 'locus-retrieval+jwt';
/** The audience names the custodian's DICOMweb service: the registry's gateway and the trust's own PACS gateway both accept it. */
export const retrievalAudience = (custodian: string): string => `urn:locus:dicomweb:${custodian}`;

/** What a retrieval token is bound to (issue 6): one study at one custodian, for one user of one organisation, for one purpose. */
export interface RetrievalGrant {
  studyUid: string;
  custodian: string;
  organization: string;
  subject: string;
  role: Principal['role'];
  purposeOfUse: string;
  breakGlass: boolean;
  userName?: string;
}

export interface SignedRetrievalToken {
  token: string;
  expiresAt: Date;
  jti: string;
}

const claimsSchema = z.object({
  sub: z.string().min(1).max(256),
  jti: z.string().max(256),
  study_uid: z.string().min(1).max(64),
  custodian: z.string().regex(/^[A-Z0-9]{1,10}$/),
  org: z.string().regex(/^[A-Z0-9]{1,10}$/),
  role: z.enum(ROLES as unknown as [Principal['role'], ...Principal['role'][]]),
  purpose_of_use: z.string().min(1).max(32),
  break_glass: z.boolean().optional(),
  name: z.string().max(256).optional(),
});

/** Signs a retrieval token with the registry's current key. No patient data goes in it: PACS gateways log tokens. */
export async function signRetrievalToken(keys: RetrievalKeys, issuer: string, grant: RetrievalGrant, ttlSeconds: number, now = new Date()): Promise<SignedRetrievalToken> {
  const { kid, privateKey } = await keys.signingKey();
  const iat = Math.floor(now.getTime() / 1000);
  const jti = randomUUID();
  const token = await new SignJWT({
    study_uid: grant.studyUid,
    custodian: grant.custodian,
    org: grant.organization,
    role: grant.role,
    purpose_of_use: grant.purposeOfUse,
    ...(grant.breakGlass ? { break_glass: true } : {}),
    ...(grant.userName ? { name: grant.userName } : {}),
  })
    .setProtectedHeader({ alg: 'ES256', kid, typ: RETRIEVAL_TOKEN_TYPE })
    .setIssuer(issuer)
    .setSubject(grant.subject)
    .setAudience(retrievalAudience(grant.custodian))
    .setIssuedAt(iat)
    .setNotBefore(iat)
    .setJti(jti)
    .setExpirationTime(iat + ttlSeconds)
    .sign(privateKey);
  return { token, expiresAt: new Date((iat + ttlSeconds) * 1000), jti };
}

/** True when the compact JWS claims to be a retrieval token (header `typ`); says nothing of its validity. */
export function looksLikeRetrievalToken(token: string): boolean {
  try {
    return decodeProtectedHeader(token).typ === RETRIEVAL_TOKEN_TYPE;
  } catch {
    return false;
  }
}

export interface VerifiedRetrieval extends RetrievalGrant {
  jti: string;
  issuer: string;
}

const refused = (diagnostics: string): FhirError => new FhirError(401, 'login', diagnostics, 'MISSING_OR_INVALID_HEADER');

/** Verifies a retrieval token for `custodian` against the registry's published keys (as a trust's gateway would). */
export async function verifyRetrievalToken(keys: RetrievalKeys, issuer: string, token: string, custodian: string, now = new Date()): Promise<VerifiedRetrieval> {
  const attempt = async (): Promise<Record<string, unknown>> => {
    const { payload } = await jwtVerify(token, createLocalJWKSet(await keys.publicJwks()), {
      issuer,
      audience: retrievalAudience(custodian),
      algorithms: ['ES256'],
      typ: RETRIEVAL_TOKEN_TYPE,
      requiredClaims: ['exp', 'sub', 'jti'],
      currentDate: now,
      clockTolerance: 30,
    });
    return payload;
  };
  let payload: Record<string, unknown>;
  try {
    try {
      payload = await attempt();
    } catch (e) {
      // A key another node created since this one last read the table.
      if (!(e instanceof errors.JWKSNoMatchingKey)) throw e;
      keys.refresh();
      payload = await attempt();
    }
  } catch (e) {
    if (e instanceof errors.JWTExpired) throw refused('the retrieval token has expired; call $resolve again');
    if (e instanceof errors.JWTClaimValidationFailed && e.claim === 'aud') throw refused(`the retrieval token is not for custodian ${custodian}`);
    throw refused('the retrieval token could not be verified');
  }
  const c = claimsSchema.safeParse(payload);
  if (!c.success) throw refused('the retrieval token claims are malformed');
  const v = c.data;
  if (v.custodian !== custodian) throw refused(`the retrieval token is not for custodian ${custodian}`);
  return {
    studyUid: v.study_uid,
    custodian: v.custodian,
    organization: v.org,
    subject: v.sub,
    role: v.role,
    purposeOfUse: v.purpose_of_use,
    breakGlass: v.break_glass === true,
    userName: v.name,
    jti: v.jti,
    issuer,
  };
}

/** The audit trail's view of a retrieval token's holder. */
export function retrievalPrincipal(v: VerifiedRetrieval): Principal {
  return {
    subject: v.subject,
    issuer: v.issuer,
    organization: v.organization,
    role: v.role,
    scopes: [],
    purposeOfUse: v.purposeOfUse,
    ...(v.breakGlass ? { breakGlassReason: 'break-glass retrieval token (reason recorded at $resolve)' } : {}),
    clientId: 'retrieval-token',
    tokenId: v.jti,
    userName: v.userName,
  };
}
