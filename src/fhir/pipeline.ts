import { randomUUID } from 'node:crypto';
import type { Request, Response } from 'express';
import type { PointerPolicy } from '../access/policy';
import type { Principal } from '../access/principal';
import type { TokenVerifier, UnverifiedIdentity } from '../access/tokens';
import { TokenError } from '../access/tokens';
import type { AuditAction, AuditRecord, AuditSubtype } from '../audit/audit-event';
import { statusToOutcome } from '../audit/audit-event';
import type { AuditWriter } from '../audit/audit-store';
import type { Config } from '../config';
import type { Logger } from '../log';
import type { Database, Queryable } from '../store/database';
import { StoreUnavailableError } from '../store/database';
import { FhirError, operationOutcome, unauthorized } from './errors';

export interface AppDeps {
  db: Database;
  config: Config;
  verifier: TokenVerifier;
  policy: PointerPolicy;
  audit: AuditWriter;
  logger: Logger;
}

export const FHIR_JSON = 'application/fhir+json; charset=utf-8';

/** What the audit trail learns while a request is handled. */
export interface AuditDraft {
  patients: string[];
  entities: { type: string; id: string; version?: number }[];
  query?: string;
  resourceType?: string;
  withheld?: boolean;
  extraDetail?: { type: string; value: string }[];
}

export interface Ctx {
  req: Request;
  requestId: string;
  principal: Principal;
  deps: AppDeps;
  draft: AuditDraft;
  fhirBase: string;
  /** Writes this request's AuditEvent with `q` (a write transaction): the pipeline then skips its own. */
  auditIn(q: Queryable, outcome?: Partial<AuditRecord>): Promise<void>;
}

export interface Reply {
  status: number;
  body?: string;
  contentType?: string;
  headers?: Record<string, string>;
  /** The use case wrote its own AuditEvents (Bundles: one per entry or one per transaction). */
  audited?: boolean;
}

/** One row of the route table: every route declares its audit subtype and action (BALP). */
export interface RouteDef {
  method: 'get' | 'post' | 'put' | 'delete';
  path: string;
  subtype: AuditSubtype;
  operation?: string;
  action: AuditAction | ((req: Request) => AuditAction);
  /** false only for the CapabilityStatement. */
  auth: boolean;
  handle(ctx: Ctx): Promise<Reply>;
}

const REQUEST_ID = /^[A-Za-z0-9\-._:]{1,128}$/;

export function requestIdOf(req: Request): string {
  const given = req.header('x-request-id');
  return given && REQUEST_ID.test(given) ? given : randomUUID();
}

export function fhirBaseOf(deps: AppDeps): string {
  return `${deps.config.baseUrl}/fhir`;
}

async function authenticate(req: Request, verifier: TokenVerifier): Promise<Principal> {
  const header = req.header('authorization');
  if (!header) throw unauthorized('an Authorization: Bearer token is required');
  const m = /^Bearer\s+(\S+)$/i.exec(header);
  if (!m) throw unauthorized('the Authorization header must be Bearer <JWT>');
  return verifier.verify(m[1] as string, req.header('x-break-glass-reason') ?? undefined);
}

export function toFhirError(e: unknown, logger: Logger, requestId: string): FhirError {
  if (e instanceof FhirError) return e;
  if (e instanceof StoreUnavailableError) return new FhirError(503, 'transient', 'the registry store is unavailable; retry shortly', 'SERVICE_UNAVAILABLE');
  logger.error({ requestId, err: e instanceof Error ? { name: e.name, message: e.message, code: (e as { code?: unknown }).code } : String(e) }, 'unhandled error');
  return new FhirError(500, 'exception', 'an internal error occurred; the request id identifies it in the server log', 'INTERNAL_SERVER_ERROR');
}

export function sendError(res: Response, err: FhirError, requestId: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.status(err.status).setHeader('content-type', FHIR_JSON);
  if (err.status === 503 || err.status === 429) res.setHeader('retry-after', '5');
  if (err.status === 401) res.setHeader('www-authenticate', 'Bearer realm="locus", error="invalid_token"');
  res.setHeader('x-request-id', requestId);
  res.send(JSON.stringify(operationOutcome(err.issues)));
}

/**
 * The request pipeline: authenticate, run the use case, make the AuditEvent durable, then send.
 * Failures are audited too (401 with whatever identity the token claimed). If the audit cannot
 * be written, the request fails with 503 and no data leaves the server.
 */
export function runRoute(route: RouteDef, deps: AppDeps) {
  return async (req: Request, res: Response): Promise<void> => {
    const requestId = (res.getHeader('x-request-id') as string | undefined) ?? requestIdOf(req);
    const action = typeof route.action === 'function' ? route.action(req) : route.action;
    const draft: AuditDraft = { patients: [], entities: [] };
    let principal: Principal | undefined;
    let claimed: UnverifiedIdentity | undefined;
    let audited = false;
    const record = (extra: Partial<AuditRecord>): AuditRecord => ({
      requestId,
      subtype: route.subtype,
      operation: route.operation,
      action,
      outcome: '0',
      principal,
      claimed,
      clientIp: req.ip,
      ...draft,
      ...extra,
    });
    try {
      if (route.auth) principal = await authenticate(req, deps.verifier);
      const ctx: Ctx = {
        req,
        requestId,
        principal: principal as Principal,
        deps,
        draft,
        fhirBase: fhirBaseOf(deps),
        auditIn: async (q, extra) => {
          await deps.audit.write(q, record(extra ?? {}));
          audited = true;
        },
      };
      const reply = await route.handle(ctx);
      if (!audited && !reply.audited) await deps.audit.write(deps.db, record({ outcome: statusToOutcome(reply.status) }));
      res.status(reply.status);
      for (const [k, v] of Object.entries(reply.headers ?? {})) res.setHeader(k, v);
      if (reply.body !== undefined) {
        res.setHeader('content-type', reply.contentType ?? FHIR_JSON);
        res.send(reply.body);
      } else {
        res.end();
      }
    } catch (e) {
      if (e instanceof TokenError) claimed = e.claimed;
      let err = toFhirError(e, deps.logger, requestId);
      try {
        await deps.audit.write(deps.db, record({ outcome: statusToOutcome(err.status), outcomeDesc: err.message.slice(0, 500) }));
      } catch (auditError) {
        deps.logger.error({ requestId, err: auditError instanceof Error ? auditError.message : String(auditError) }, 'audit write failed');
        err = new FhirError(503, 'transient', 'the audit trail cannot be written, so the request was refused; retry shortly', 'SERVICE_UNAVAILABLE');
      }
      sendError(res, err, requestId);
    }
  };
}
