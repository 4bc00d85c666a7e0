import type { Request } from 'express';
import type { Principal } from '../access/principal';
import { hasScope } from '../access/principal';
import type { UnverifiedIdentity } from '../access/tokens';
import { TokenError } from '../access/tokens';
import type { AuditOutcome, AuditRecord } from '../audit/audit-event';
import { forbidden, unauthorized } from '../fhir/errors';
import type { AppDeps } from '../fhir/pipeline';

/** Only the auditor role reviews the trail (issue 3): a token's scopes alone are not enough. */
export function requireAuditor(p: Principal, interaction: 's' | 'r'): void {
  if (p.role !== 'auditor') throw forbidden('only the auditor role may review the audit trail', 'ACCESS_DENIED_LEVEL');
  if (!hasScope(p, 'AuditEvent', interaction)) throw forbidden(`the token's scopes do not allow ${interaction === 's' ? 'search' : 'read'} of AuditEvent`, 'ACCESS_DENIED_LEVEL');
}

export function bearerToken(req: Request): string {
  const header = req.header('authorization');
  if (!header) throw unauthorized('an Authorization: Bearer token is required');
  const m = /^Bearer\s+(\S+)$/i.exec(header);
  if (!m) throw unauthorized('the Authorization header must be Bearer <JWT>');
  return m[1] as string;
}

export const SESSION_COOKIE = 'locus_audit_session';

/** The session token from the page's HttpOnly cookie, if any. */
export function cookieToken(req: Request): string | undefined {
  for (const part of (req.header('cookie') ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === SESSION_COOKIE) {
      const v = part.slice(eq + 1).trim();
      return /^[A-Za-z0-9_\-.]{1,8192}$/.test(v) ? v : undefined;
    }
  }
  return undefined;
}

/** Who made a request outside the FHIR pipeline, for its AuditEvent, whether or not they were let in. */
export interface Caller {
  principal?: Principal;
  claimed?: UnverifiedIdentity;
}

export async function verifyToken(deps: AppDeps, token: string, caller: Caller): Promise<Principal> {
  try {
    caller.principal = await deps.verifier.verify(token);
    return caller.principal;
  } catch (e) {
    if (e instanceof TokenError) caller.claimed = e.claimed;
    throw e;
  }
}

export interface ReviewAudit {
  requestId: string;
  req: Request;
  caller: Caller;
  outcome: AuditOutcome;
  outcomeDesc?: string;
  query?: string;
  patients?: string[];
  entities?: { type: string; id: string }[];
  channel: string;
}

/** The AuditEvent of one review interaction (page view, export, sign-in): reading the audit is audited. */
export function reviewRecord(a: ReviewAudit): AuditRecord {
  return {
    requestId: a.requestId,
    subtype: 'search-type',
    action: 'E',
    outcome: a.outcome,
    ...(a.outcomeDesc ? { outcomeDesc: a.outcomeDesc.slice(0, 500) } : {}),
    principal: a.caller.principal,
    claimed: a.caller.claimed,
    clientIp: a.req.ip,
    resourceType: 'AuditEvent',
    ...(a.query !== undefined ? { query: a.query } : {}),
    patients: a.patients ?? [],
    entities: a.entities ?? [],
    extraDetail: [{ type: 'channel', value: a.channel }],
  };
}
