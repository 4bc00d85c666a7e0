/** Who is calling, as proven by a verified token. The domain sees only this, never the JWT. */
export type Role = 'clinician' | 'publisher' | 'admin' | 'auditor' | 'peer' | 'system';
export const ROLES: readonly Role[] = ['clinician', 'publisher', 'admin', 'auditor', 'peer', 'system'];

/** v3 ActReason purposes of use Locus distinguishes (TREAT, ETREAT break-glass, others). */
export type PurposeOfUse = string;

export interface Principal {
  /** `sub`: the user or system id. */
  subject: string;
  issuer: string;
  /** The caller's organisation (ODS code), from the token's organisation claim. */
  organization: string;
  role: Role;
  scopes: Scope[];
  purposeOfUse: PurposeOfUse;
  /** Set only for ETREAT with a stated reason of at least 10 characters. */
  breakGlassReason?: string;
  clientId?: string;
  tokenId?: string;
  userName?: string;
  /** When the token stops being valid (epoch ms). */
  expiresAt?: number;
}

export type ScopeContext = 'patient' | 'user' | 'system';
export type Interaction = 'c' | 'r' | 'u' | 'd' | 's';

export interface Scope {
  context: ScopeContext;
  resourceType: string; // '*' for any
  interactions: ReadonlySet<Interaction>;
}

/**
 * SMART App Launch v2 scopes (`system/ImagingStudy.cruds`), with the v1 forms `.read`,
 * `.write` and `.*` understood for older clients. Anything else is ignored, not guessed at.
 */
export function parseScopes(scope: string): Scope[] {
  const out: Scope[] = [];
  for (const raw of scope.split(/\s+/).filter(Boolean)) {
    const m = /^(patient|user|system)\/([A-Za-z]+|\*)\.(\*|read|write|c?r?u?d?s?)(\?.*)?$/.exec(raw);
    if (!m || m[3] === '') continue;
    const [, context, resourceType, perms] = m as unknown as [string, ScopeContext, string, string];
    let interactions: Interaction[];
    if (perms === '*') interactions = ['c', 'r', 'u', 'd', 's'];
    else if (perms === 'read') interactions = ['r', 's'];
    else if (perms === 'write') interactions = ['c', 'u', 'd'];
    else interactions = perms.split('') as Interaction[];
    out.push({ context, resourceType, interactions: new Set(interactions) });
  }
  return out;
}

export function hasScope(principal: Principal, resourceType: string, interaction: Interaction): boolean {
  return principal.scopes.some(
    (s) => (s.resourceType === '*' || s.resourceType === resourceType) && s.interactions.has(interaction),
  );
}

export function isBreakGlass(principal: Principal): boolean {
  return principal.purposeOfUse === 'ETREAT' && principal.breakGlassReason !== undefined;
}

/** The scopes a dev token carries for each role (what a real IdP would be configured to grant). */
export const ROLE_SCOPES: Record<Role, string> = {
  clinician: 'user/ImagingStudy.rs user/DocumentReference.rs user/Organization.rs user/Endpoint.rs',
  publisher:
    'system/ImagingStudy.cruds system/DocumentReference.cruds system/Organization.rs system/Endpoint.rs',
  admin: 'system/Organization.cruds system/Endpoint.cruds system/Consent.cruds',
  auditor: 'user/AuditEvent.rs',
  peer: 'system/ImagingStudy.rs system/DocumentReference.rs system/Organization.rs system/Endpoint.rs',
  system: 'system/*.cruds',
};
