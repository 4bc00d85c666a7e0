import type { Express, NextFunction, Request, Response } from 'express';
import express from 'express';
import type { DevIssuer } from '../access/dev-issuer';
import type { AuditOutcome } from '../audit/audit-event';
import { statusToOutcome } from '../audit/audit-event';
import { encodeAuditCursor, parseAuditQuery } from '../audit/audit-query';
import { countAuditEvents, countPerDay, findAuditPage } from '../audit/audit-search';
import type { FhirError } from '../fhir/errors';
import { badRequest, unauthorized } from '../fhir/errors';
import type { AppDeps } from '../fhir/pipeline';
import { toFhirError } from '../fhir/pipeline';
import type { Caller, ReviewAudit } from './audit-access';
import { SESSION_COOKIE, cookieToken, requireAuditor, reviewRecord, verifyToken } from './audit-access';
import { mountAuditAssets } from './audit-assets';
import { accessChart } from './audit-chart';
import { streamExport } from './audit-export';
import { chartWindow, filterParams, filterQuery, readFilter } from './audit-filter';
import { errorSummary, filterForm, layout, loginBody, pagination, resultsTable } from './audit-page-view';
import { html } from './html';
import { sessionCookie } from './page-parts';

const PAGE_SIZE = 25;
const PAGE_HEADERS: Record<string, string> = {
  'content-type': 'text/html; charset=utf-8',
  'content-security-policy': "default-src 'none'; style-src 'self'; img-src 'self' data:; font-src 'self' https://assets.nhs.uk; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'x-frame-options': 'DENY',
  // Filter URLs carry NHS numbers: never hand them to another site.
  'referrer-policy': 'no-referrer',
};

function sendPage(res: Response, status: number, page: string, extra: Record<string, string> = {}): void {
  res.status(status);
  for (const [k, v] of Object.entries({ ...PAGE_HEADERS, ...extra })) res.setHeader(k, v);
  res.send(page);
}

const clearCookie = `${SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/audit; Max-Age=0`;


/** Cross-site form posts are refused outright (the SameSite=Strict cookie already withholds the session). */
function sameOrigin(req: Request, res: Response, next: NextFunction): void {
  const origin = req.header('origin');
  if (origin && origin !== 'null' && origin !== `${req.protocol}://${req.get('host')}`) {
    sendPage(res, 403, layout('Refused', errorSummary(['This form may only be sent from the audit review page itself.'])));
    return;
  }
  next();
}

export interface AuditPageOptions {
  /** Resolves the development issuer when this server runs it and the verifier trusts it. */
  devIssuer(): Promise<DevIssuer | undefined>;
}

export function mountAuditPage(app: Express, deps: AppDeps, options: AuditPageOptions): void {
  const form = express.urlencoded({ extended: false, limit: '16kb' });
  const requestId = (res: Response): string => res.getHeader('x-request-id') as string;
  const audit = async (a: Omit<ReviewAudit, 'channel'> & { channel?: string }): Promise<boolean> => {
    try {
      await deps.audit.write(deps.db, reviewRecord({ channel: 'audit-page', ...a }));
      return true;
    } catch (e) {
      deps.logger.error({ requestId: a.requestId, err: e instanceof Error ? e.message : String(e) }, 'audit write failed');
      return false;
    }
  };
  const unavailable = (res: Response): void => sendPage(res, 503, layout('Unavailable', errorSummary(['The audit trail cannot be written just now, so nothing can be shown. Try again shortly.'])), { 'retry-after': '5' });

  /** Signs the session in (cookie) or shows why not; both are audited. */
  const signIn = async (req: Request, res: Response, token: string, caller: Caller): Promise<void> => {
    const rid = requestId(res);
    try {
      requireAuditor(await verifyToken(deps, token, caller), 's');
    } catch (e) {
      const err = toFhirError(e, deps.logger, rid);
      if (!(await audit({ requestId: rid, req, caller, outcome: statusToOutcome(err.status), outcomeDesc: err.message, channel: 'audit-page-sign-in' }))) return unavailable(res);
      const dev = Boolean(await options.devIssuer());
      return sendPage(res, err.status, layout('Sign in', loginBody([`Sign-in refused: ${err.message}`], dev)));
    }
    if (!(await audit({ requestId: rid, req, caller, outcome: '0', channel: 'audit-page-sign-in' }))) return unavailable(res);
    res.setHeader('set-cookie', sessionCookie(req, SESSION_COOKIE, '/audit', token));
    res.redirect(303, '/audit');
  };

  mountAuditAssets(app);

  app.post('/audit/login', sameOrigin, form, async (req: Request, res: Response) => {
    const raw = typeof req.body?.token === 'string' ? (req.body.token as string) : '';
    const token = raw.trim().replace(/^Bearer\s+/i, '');
    if (!/^[A-Za-z0-9_\-.]{1,8192}$/.test(token)) {
      sendPage(res, 400, layout('Sign in', loginBody(['Paste the whole access token (a JWT: three parts separated by dots)'], Boolean(await options.devIssuer()))));
      return;
    }
    await signIn(req, res, token, {});
  });

  app.post('/audit/dev-login', sameOrigin, form, async (req: Request, res: Response) => {
    const issuer = await options.devIssuer();
    if (!issuer) {
      sendPage(res, 404, layout('Not available', errorSummary(['The development issuer is not enabled on this server.'])));
      return;
    }
    const org = typeof req.body?.org === 'string' ? (req.body.org as string).trim().toUpperCase() : '';
    if (!/^[A-Z0-9]{1,10}$/.test(org)) {
      sendPage(res, 400, layout('Sign in', loginBody(['Enter an ODS code: letters and digits only'], true)));
      return;
    }
    const token = await issuer.mint({ org, role: 'auditor', audience: deps.config.audience, expiresInSeconds: 8 * 3600, name: 'Development auditor' });
    await signIn(req, res, token, {});
  });

  app.post('/audit/logout', sameOrigin, (_req: Request, res: Response) => {
    res.setHeader('set-cookie', clearCookie);
    res.redirect(303, '/audit');
  });

  /** The session's auditor, or a response already sent (sign-in page, 403) and audited. */
  const session = async (req: Request, res: Response, caller: Caller): Promise<boolean> => {
    const token = cookieToken(req);
    if (!token) {
      sendPage(res, 200, layout('Sign in', loginBody([], Boolean(await options.devIssuer()))));
      return false;
    }
    try {
      requireAuditor(await verifyToken(deps, token, caller), 's');
      return true;
    } catch (e) {
      const err = toFhirError(e, deps.logger, requestId(res));
      if (!(await audit({ requestId: requestId(res), req, caller, outcome: statusToOutcome(err.status), outcomeDesc: err.message }))) {
        unavailable(res);
        return false;
      }
      const dev = Boolean(await options.devIssuer());
      const body = err.status === 401 ? loginBody([`Your session has ended: ${err.message}. Sign in again.`], dev) : errorSummary([err.message]);
      sendPage(res, err.status, layout(err.status === 401 ? 'Sign in' : 'Not allowed', body), err.status === 401 ? { 'set-cookie': clearCookie } : {});
      return false;
    }
  };

  app.get('/audit', async (req: Request, res: Response) => {
    const caller: Caller = {};
    if (!(await session(req, res, caller))) return;
    const rid = requestId(res);
    const filter = readFilter(req.query as Record<string, unknown>);
    const { params, errors } = filterParams(filter);
    const who = `${caller.principal?.userName ?? caller.principal?.subject ?? ''} (${caller.principal?.organization ?? ''})`;
    const fq = filterQuery(filter);
    const base = { requestId: rid, req, caller, query: new URLSearchParams(params).toString() };
    const cursor = typeof req.query.cursor === 'string' ? req.query.cursor.slice(0, 512) : undefined;
    let query;
    try {
      query = Object.keys(errors).length === 0 ? parseAuditQuery([...params, ['_count', String(PAGE_SIZE)], ...(cursor ? [['_cursor', cursor] as [string, string]] : [])], { defaultPageSize: PAGE_SIZE, maxPageSize: PAGE_SIZE }) : undefined;
    } catch (e) {
      errors.cursor = (e as FhirError).message ?? 'the filter is not valid';
    }
    if (!query) {
      if (!(await audit({ ...base, outcome: '4', outcomeDesc: Object.values(errors).join('; ') }))) return unavailable(res);
      sendPage(res, 400, layout('Audit events', html`<h1>Audit events</h1>${errorSummary(Object.values(errors))}${filterForm(filter, errors)}`, { who }));
      return;
    }
    const [page, total, counts] = await Promise.all([
      findAuditPage(deps.db, query, false),
      countAuditEvents(deps.db, query),
      (async () => {
        const w = chartWindow(filter, new Date());
        return { w, counts: await countPerDay(deps.db, query, w.until, w.days) };
      })(),
    ]);
    const outcome: AuditOutcome = '0';
    // Durable before anything is shown: if the review cannot be recorded, it is not shown.
    if (!(await audit({ ...base, outcome, patients: query.patients, entities: page.rows.map((r) => ({ type: 'AuditEvent', id: r.id })) }))) return unavailable(res);
    const link = (c: typeof page.next): string | undefined => (c ? `/audit?${fq ? `${fq}&` : ''}cursor=${encodeAuditCursor(c)}` : undefined);
    const from = new Date(Date.UTC(counts.w.until.getUTCFullYear(), counts.w.until.getUTCMonth(), counts.w.until.getUTCDate() - counts.w.days + 1));
    const body = html`<h1>Audit events</h1>
${filterForm(filter, {})}
<h2 class="nhsuk-heading-m">Accesses per day by organisation</h2>
${accessChart(counts.counts, { from, days: counts.w.days })}
<div class="locus-actions"><h2 class="nhsuk-heading-m nhsuk-u-margin-bottom-0">${total} matching event${total === 1 ? '' : 's'}</h2>
<a class="nhsuk-link" id="export-csv" href="${`/audit/export.csv${fq ? `?${fq}` : ''}`}" download>Export this filter as CSV</a></div>
${resultsTable(page.rows)}
${pagination(link(page.previous), link(page.next))}`;
    sendPage(res, 200, layout('Audit events', body, { who }));
  });

  app.get('/audit/export.csv', async (req: Request, res: Response) => {
    const rid = requestId(res);
    const filter = readFilter(req.query as Record<string, unknown>);
    const { params, errors } = filterParams(filter);
    const problems = Object.values(errors);
    await streamExport({
      req,
      res,
      deps,
      requestId: rid,
      params,
      format: 'csv',
      channel: 'audit-page-export-csv',
      authenticate: async (caller) => {
        const token = cookieToken(req);
        if (!token) throw unauthorized('sign in on the audit review page first');
        const p = await verifyToken(deps, token, caller);
        requireAuditor(p, 's');
        if (problems.length > 0) throw badRequest(problems.join('; '));
        return p;
      },
      fail: (err) => sendPage(res, err.status, layout('Export refused', html`<h1>Export refused</h1>${errorSummary(problems.length > 0 && err.status === 400 ? problems : [err.message])}<p><a class="nhsuk-link" href="/audit">Back to the audit review</a></p>`)),
    });
  });
}
