import { once } from 'node:events';
import type { NextFunction, Request, Response } from 'express';
import type { Principal } from '../access/principal';
import { statusToOutcome } from '../audit/audit-event';
import { CSV_HEADER, csvRow, ndjsonRow } from '../audit/audit-csv';
import type { AuditQuery, ExportFormat } from '../audit/audit-query';
import { formatOf, parseAuditQuery } from '../audit/audit-query';
import { streamAuditEvents } from '../audit/audit-search';
import { queryParams } from '../fhir/body';
import { FhirError } from '../fhir/errors';
import type { AppDeps } from '../fhir/pipeline';
import { requestIdOf, sendError, toFhirError } from '../fhir/pipeline';
import type { Caller } from './audit-access';
import { bearerToken, requireAuditor, reviewRecord, verifyToken } from './audit-access';

const CONTENT_TYPES: Record<Exclude<ExportFormat, 'json'>, string> = {
  csv: 'text/csv; charset=utf-8',
  ndjson: 'application/fhir+ndjson; charset=utf-8',
};

export interface ExportRequest {
  req: Request;
  res: Response;
  deps: AppDeps;
  requestId: string;
  params: [string, string][];
  format: Exclude<ExportFormat, 'json'>;
  channel: string;
  /** Proves who is asking (bearer token or page session); fills `caller` as it learns. */
  authenticate(caller: Caller): Promise<Principal>;
  /** How a refusal is shown (OperationOutcome for the API, a page for the browser). */
  fail(err: FhirError): void;
}

/**
 * Streams the events matching a filter as CSV or NDJSON. The export's own AuditEvent is durable
 * before the first byte; refusals are audited too. Rows arrive in keyset batches and the next
 * batch is fetched only when the socket has drained, so memory stays flat for any trail size.
 */
export async function streamExport(x: ExportRequest): Promise<void> {
  const { req, res, deps } = x;
  const caller: Caller = {};
  const audit = { query: new URLSearchParams(x.params).toString(), patients: [] as string[] };
  let query: AuditQuery;
  try {
    const principal = await x.authenticate(caller);
    requireAuditor(principal, 's');
    query = parseAuditQuery(x.params, { defaultPageSize: deps.config.defaultPageSize, maxPageSize: deps.config.maxPageSize });
    audit.patients = query.patients;
    await deps.audit.write(deps.db, reviewRecord({ requestId: x.requestId, req, caller, outcome: '0', ...audit, channel: x.channel }));
  } catch (e) {
    let err = toFhirError(e, deps.logger, x.requestId);
    if (err.status !== 503) {
      try {
        await deps.audit.write(deps.db, reviewRecord({ requestId: x.requestId, req, caller, outcome: statusToOutcome(err.status), outcomeDesc: err.message, ...audit, channel: x.channel }));
      } catch {
        err = new FhirError(503, 'transient', 'the audit trail cannot be written, so the request was refused; retry shortly', 'SERVICE_UNAVAILABLE');
      }
    } else {
      err = new FhirError(503, 'transient', 'the audit trail cannot be written, so the request was refused; retry shortly', 'SERVICE_UNAVAILABLE');
    }
    x.fail(err);
    return;
  }
  res.status(200);
  res.setHeader('content-type', CONTENT_TYPES[x.format]);
  if (x.format === 'csv') res.setHeader('content-disposition', `attachment; filename="audit-${new Date().toISOString().slice(0, 10)}.csv"`);
  let closed = false;
  res.on('close', () => {
    closed = true;
  });
  try {
    if (x.format === 'csv') res.write(CSV_HEADER);
    const row = x.format === 'csv' ? csvRow : ndjsonRow;
    for await (const batch of streamAuditEvents(deps.db, query, 1000)) {
      if (closed) return;
      if (!res.write(batch.map(row).join(''))) await Promise.race([once(res, 'drain'), once(res, 'close')]);
    }
    res.end();
  } catch (e) {
    // Headers are gone: the only honest signal left is to cut the stream short.
    deps.logger.error({ requestId: x.requestId, err: e instanceof Error ? e.message : String(e) }, 'audit export failed mid-stream');
    res.destroy();
  }
}

/** GET /fhir/AuditEvent with `_format=csv|ndjson` or an Accept of text/csv or NDJSON; JSON goes on to the search route. */
export function fhirExportHandler(deps: AppDeps) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const params = queryParams(req);
    let format: ExportFormat;
    try {
      format = formatOf(params, req.header('accept'));
    } catch {
      next(); // the search route answers the bad _format, audited
      return;
    }
    if (format === 'json') {
      next();
      return;
    }
    const requestId = (res.getHeader('x-request-id') as string | undefined) ?? requestIdOf(req);
    void streamExport({
      req,
      res,
      deps,
      requestId,
      params,
      format,
      channel: `fhir-export-${format}`,
      authenticate: (caller) => verifyToken(deps, bearerToken(req), caller),
      fail: (err) => sendError(res, err, requestId),
    }).catch((e: unknown) => sendError(res, toFhirError(e, deps.logger, requestId), requestId));
  };
}
