import type { ServerResponse } from 'node:http';
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
import type { HttpRequest } from './http';
import { requestIdOf } from './http';

export { requestIdOf } from './http';

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
  req: HttpRequest;
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
  action: AuditAction | ((req: HttpRequest) => AuditAction);
  /** false only for the CapabilityStatement. */
  auth: boolean;
  handle(ctx: Ctx): Promise<Reply>;
}

export function fhirBaseOf(deps: AppDeps): string {
  return `${deps.config.baseUrl}/fhir`;
}

async function authenticate(req: HttpRequest, verifier: TokenVerifier): Promise<Principal> {
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

/** Plain node:http calls, so that express's and the fast lane's responses are written alike. */
export function sendError(res: ServerResponse, err: FhirError, requestId: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.statusCode = err.status;
  res.setHeader('content-type', FHIR_JSON);
  if (err.status === 503 || err.status === 429) res.setHeader('retry-after', '5');
  if (err.status === 401) res.setHeader('www-authenticate', 'Bearer realm="locus", error="invalid_token"');
  res.setHeader('x-request-id', requestId);
  res.end(JSON.stringify(operationOutcome(err.issues)));
}

/**
 * FHIR conditional read (R4 http.html#cread): a GET whose If-None-Match names the current ETag,
 * or whose If-Modified-Since is not before Last-Modified, is answered 304 without a body. It is
 * still a read, audited like any other.
 */
function notModified(req: HttpRequest, reply: Reply): boolean {
  if (req.method !== 'GET' && req.method !== 'HEAD') return false;
  if (reply.status !== 200) return false;
  const etag = reply.headers?.etag;
  const noneMatch = req.header('if-none-match');
  if (noneMatch !== undefined) return etag !== undefined && noneMatch.split(',').some((t) => t.trim() === '*' || t.trim() === etag);
  const since = req.header('if-modified-since');
  const modified = reply.headers?.['last-modified'];
  if (since === undefined || modified === undefined) return false;
  const sinceMs = Date.parse(since);
  return !Number.isNaN(sinceMs) && Date.parse(modified) <= sinceMs;
}

/**
 * The request pipeline: authenticate, run the use case, make the AuditEvent durable, then send.
 * Failures are audited too (401 with whatever identity the token claimed). If the audit cannot
 * be written, the request fails with 503 and no data leaves the server.
 */
export function runRoute(route: RouteDef, deps: AppDeps) {
  return async (req: HttpRequest, res: ServerResponse): Promise<void> => {
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
      res.statusCode = reply.status;
      for (const [k, v] of Object.entries(reply.headers ?? {})) res.setHeader(k, v);
      if (notModified(req, reply)) {
        res.statusCode = 304;
        res.end();
      } else if (reply.body !== undefined) {
        res.setHeader('content-type', reply.contentType ?? FHIR_JSON);
        res.end(reply.body);
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
