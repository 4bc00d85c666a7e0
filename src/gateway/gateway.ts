import type { Express, Request, Response } from 'express';
import type { AuditOutcome, AuditRecord } from '../audit/audit-event';
import { statusToOutcome } from '../audit/audit-event';
import { FhirError, badRequest } from '../fhir/errors';
import type { AppDeps } from '../fhir/pipeline';
import { requestIdOf, sendError, toFhirError } from '../fhir/pipeline';
import { endpointsOf } from '../resolve/resolve-study';
import { resolveState } from '../resolve/resolve-state';
import type { GatewayCaller, GatewayGrant } from './gateway-access';
import { authorizeRetrieval, bearerOf } from './gateway-access';
import type { DicomWebTarget } from './dicomweb-path';
import { DicomWebPathError, parseDicomWebPath } from './dicomweb-path';
import { forwardStream } from './upstream';

export const RETRIEVE_OPERATION = 'dicomweb-retrieve';

const AUDIT_UNAVAILABLE = (): FhirError => new FhirError(503, 'transient', 'the audit trail cannot be written, so the request was refused; retry shortly', 'SERVICE_UNAVAILABLE');

interface Attempt {
  requestId: string;
  req: Request;
  caller: GatewayCaller;
  target?: DicomWebTarget;
  grant?: GatewayGrant;
}

/** The AuditEvent of one gateway request, at one phase: `started` before the first byte, then `completed` or `failed` with the bytes sent. */
function retrievalRecord(a: Attempt, phase: 'started' | 'completed' | 'failed' | 'refused', outcome: AuditOutcome, bytes?: number, outcomeDesc?: string): AuditRecord {
  const t = a.target;
  return {
    requestId: a.requestId,
    subtype: 'operation',
    operation: RETRIEVE_OPERATION,
    action: t?.kind === 'qido' ? 'E' : 'R',
    outcome,
    ...(outcomeDesc ? { outcomeDesc: outcomeDesc.slice(0, 500) } : {}),
    principal: a.caller.principal,
    claimed: a.caller.claimed,
    clientIp: a.req.ip,
    resourceType: 'ImagingStudy',
    ...(t ? { query: `${t.path}${t.query ? `?${t.query}` : ''}` } : {}),
    patients: [...new Set((a.grant?.pointers ?? []).map((p) => p.patient))],
    entities: (a.grant?.pointers ?? []).map((p) => ({ type: p.type, id: p.id, version: p.version })),
    extraDetail: [
      { type: 'phase', value: phase },
      ...(t ? [{ type: 'custodian', value: t.custodian }, { type: 'study-instance-uid', value: t.studyUid }, { type: 'dicomweb-resource', value: `${t.kind}:${t.resource}` }] : []),
      ...(a.grant ? [{ type: 'authorised-by', value: a.grant.via }] : []),
      ...(bytes !== undefined ? [{ type: 'bytes-sent', value: String(bytes) }] : []),
    ],
  };
}

/**
 * The DICOMweb gateway (issue 6): `/dicomweb/{custodian}/studies/...`, WADO-RS and QIDO-RS,
 * forwarded to the custodian's PACS and streamed back. Every request is audited: refusals once;
 * retrievals before the first byte (durable, or nothing is sent) and again when the transfer
 * ends, with the bytes sent and whether it completed.
 */
export function mountGateway(app: Express, deps: AppDeps): void {
  app.use('/dicomweb', (req: Request, res: Response) => {
    const requestId = (res.getHeader('x-request-id') as string | undefined) ?? requestIdOf(req);
    void handle(deps, req, res, requestId).catch((e: unknown) => sendError(res, toFhirError(e, deps.logger, requestId), requestId));
  });
}

async function handle(deps: AppDeps, req: Request, res: Response, requestId: string): Promise<void> {
  const state = resolveState(deps);
  const a: Attempt = { requestId, req, caller: {} };
  const refuse = async (e: unknown, phase: 'refused' | 'failed' = 'refused'): Promise<void> => {
    let err = toFhirError(e, deps.logger, requestId);
    try {
      await deps.audit.write(deps.db, retrievalRecord(a, phase, statusToOutcome(err.status), undefined, err.message));
    } catch (auditError) {
      deps.logger.error({ requestId, err: auditError instanceof Error ? auditError.message : String(auditError) }, 'audit write failed');
      err = AUDIT_UNAVAILABLE();
    }
    if (err.status === 405) res.setHeader('allow', 'GET');
    sendError(res, err, requestId);
  };
  let wadoOrQidoBase: string;
  try {
    if (req.method !== 'GET') throw new FhirError(405, 'not-supported', 'the DICOMweb gateway serves GET (WADO-RS and QIDO-RS) only', 'INVALID_REQUEST_TYPE');
    const q = req.originalUrl.indexOf('?');
    try {
      a.target = parseDicomWebPath(req.path, q >= 0 ? req.originalUrl.slice(q + 1) : '');
    } catch (e) {
      if (e instanceof DicomWebPathError) throw badRequest(e.message);
      throw e;
    }
    a.grant = await authorizeRetrieval(deps, state, bearerOf(req.header('authorization')), a.target, a.caller, req.header('x-break-glass-reason') ?? undefined);
    const { wado, qido } = await endpointsOf(deps.db, a.target.custodian, []);
    const endpoint = a.target.kind === 'qido' ? (qido ?? wado) : wado;
    if (!endpoint) throw new FhirError(502, 'not-found', `custodian ${a.target.custodian} has no active DICOMweb Endpoint`, 'SERVICE_UNAVAILABLE');
    wadoOrQidoBase = endpoint.address.replace(/\/+$/, '');
  } catch (e) {
    await refuse(e);
    return;
  }
  const target = a.target;
  const url = new URL(`${wadoOrQidoBase}${target.path}${target.query ? `?${target.query}` : ''}`);
  const accept = req.header('accept');
  const result = await forwardStream({
    url,
    headers: {
      authorization: `Bearer ${a.grant.upstreamToken}`,
      'x-request-id': requestId,
      'user-agent': 'locus-dicomweb-gateway',
      ...(accept ? { accept } : {}),
    },
    timeoutMs: state.config.gatewayTimeoutMs,
    res,
    // Durable before the first byte leaves (DESIGN: reads are audited before the response).
    beforeStream: async () => {
      try {
        await deps.audit.write(deps.db, retrievalRecord(a, 'started', '0'));
      } catch (e) {
        deps.logger.error({ requestId, err: e instanceof Error ? e.message : String(e) }, 'audit write failed');
        throw AUDIT_UNAVAILABLE();
      }
    },
  });
  if (result.error) {
    await refuse(result.error, result.error.status === 503 ? 'refused' : 'failed');
    return;
  }
  try {
    await deps.audit.write(
      deps.db,
      retrievalRecord(a, result.complete ? 'completed' : 'failed', result.complete ? '0' : '8', result.bytes, result.complete ? undefined : `transfer ended early: ${result.reason ?? 'unknown'}`),
    );
  } catch (e) {
    // The bytes are gone already; the start event is durable, so the trail still shows the retrieval.
    deps.logger.error({ requestId, err: e instanceof Error ? e.message : String(e) }, 'audit write of the transfer end failed');
  }
}
