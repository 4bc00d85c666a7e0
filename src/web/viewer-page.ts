import type { Express, NextFunction, Request, Response } from 'express';
import express from 'express';
import type { Principal } from '../access/principal';
import { hasScope } from '../access/principal';
import { TokenError } from '../access/tokens';
import type { UnverifiedIdentity } from '../access/tokens';
import type { AuditOutcome, AuditRecord } from '../audit/audit-event';
import { statusToOutcome } from '../audit/audit-event';
import { forbidden } from '../fhir/errors';
import type { AppDeps, AuditDraft } from '../fhir/pipeline';
import { fhirBaseOf, toFhirError } from '../fhir/pipeline';
import { isValidNhsNumber } from '../registry/nhs-number';
import { findPriorImaging } from '../resolve/prior-imaging';
import { resolveFor } from '../resolve/resolve-routes';
import { html } from './html';
import { sessionCookie } from './page-parts';
import { mountViewerAssets } from './viewer-assets';
import type { ViewerForm } from './viewer-view';
import { MODALITY_CHOICES, breakGlassBanner, breakGlassNotice, errorBox, openBody, searchForm, signInBody, timeline, viewerLayout } from './viewer-view';

export const VIEWER_COOKIE = 'locus_viewer_session';
const PAGE_HEADERS: Record<string, string> = {
  'content-type': 'text/html; charset=utf-8',
  'content-security-policy': "default-src 'none'; style-src 'self'; img-src 'self' data:; font-src 'self' https://assets.nhs.uk; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'x-frame-options': 'DENY',
  // Search URLs carry NHS numbers: never hand them to another site (the viewer launch included).
  'referrer-policy': 'no-referrer',
};
const CLEAR_COOKIE = `${VIEWER_COOKIE}=; HttpOnly; SameSite=Strict; Path=/viewer; Max-Age=0`;
const DATE = /^\d{4}-\d{2}-\d{2}$/;

function send(res: Response, status: number, page: string, extra: Record<string, string> = {}): void {
  res.status(status);
  for (const [k, v] of Object.entries({ ...PAGE_HEADERS, ...extra })) res.setHeader(k, v);
  res.send(page);
}


function cookieToken(req: Request): string | undefined {
  for (const part of (req.header('cookie') ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === VIEWER_COOKIE) {
      const v = part.slice(eq + 1).trim();
      return /^[A-Za-z0-9_\-.]{1,8192}$/.test(v) ? v : undefined;
    }
  }
  return undefined;
}

/** Cross-site form posts are refused (the SameSite=Strict cookie already withholds the session). */
function sameOrigin(req: Request, res: Response, next: NextFunction): void {
  const origin = req.header('origin');
  if (origin && origin !== 'null' && origin !== `${req.protocol}://${req.get('host')}`) {
    send(res, 403, viewerLayout('Refused', errorBox(['This form may only be sent from the prior-imaging page itself.'])));
    return;
  }
  next();
}

function str(v: unknown, max = 64): string {
  return typeof v === 'string' ? v.trim().slice(0, max) : '';
}

export function readForm(source: Record<string, unknown>): ViewerForm {
  return { nhs: str(source.nhs, 32), modality: str(source.modality, 8), from: str(source.from, 10), to: str(source.to, 10) };
}

/** Field errors; an empty object means the search may run. */
export function checkForm(f: ViewerForm): Partial<Record<keyof ViewerForm, string>> {
  const errors: Partial<Record<keyof ViewerForm, string>> = {};
  const digits = f.nhs.replace(/[\s-]/g, '');
  if (!/^\d{10}$/.test(digits)) errors.nhs = 'Enter a 10-digit NHS number';
  else if (!isValidNhsNumber(digits)) errors.nhs = 'Enter a valid NHS number: this one fails its check digit';
  if (f.modality && !MODALITY_CHOICES.includes(f.modality)) f.modality = '';
  for (const k of ['from', 'to'] as const) {
    if (f[k] && (!DATE.test(f[k]) || Number.isNaN(Date.parse(f[k])))) errors[k] = 'Enter a date as YYYY-MM-DD';
  }
  if (!errors.from && !errors.to && f.from && f.to && f.from > f.to) errors.to = 'The end date must be on or after the start date';
  return errors;
}

interface Caller {
  principal?: Principal;
  claimed?: UnverifiedIdentity;
}

const who = (p: Principal): string => `${p.userName ?? p.subject} (${p.organization})`;

export function mountViewer(app: Express, deps: AppDeps): void {
  const form = express.urlencoded({ extended: false, limit: '16kb' });
  const rid = (res: Response): string => res.getHeader('x-request-id') as string;
  const audit = async (res: Response, req: Request, caller: Caller, r: Partial<AuditRecord> & Pick<AuditRecord, 'subtype' | 'action'>): Promise<boolean> => {
    try {
      await deps.audit.write(deps.db, {
        requestId: rid(res),
        outcome: '0',
        principal: caller.principal,
        claimed: caller.claimed,
        clientIp: req.ip,
        patients: [],
        entities: [],
        ...r,
        extraDetail: [...(r.extraDetail ?? []), { type: 'channel', value: 'viewer-page' }],
      });
      return true;
    } catch (e) {
      deps.logger.error({ requestId: rid(res), err: e instanceof Error ? e.message : String(e) }, 'audit write failed');
      send(res, 503, viewerLayout('Unavailable', errorBox(['The audit trail cannot be written just now, so nothing can be shown. Try again shortly.'])), { 'retry-after': '5' });
      return false;
    }
  };
  const verify = async (token: string, caller: Caller, reason?: string): Promise<Principal> => {
    try {
      caller.principal = await deps.verifier.verify(token, reason);
    } catch (e) {
      if (e instanceof TokenError) caller.claimed = e.claimed;
      throw e;
    }
    if (!hasScope(caller.principal, 'ImagingStudy', 's') || !hasScope(caller.principal, 'DocumentReference', 's')) {
      throw forbidden("the token's scopes do not allow searching for imaging (ImagingStudy and DocumentReference)", 'ACCESS_DENIED_LEVEL');
    }
    return caller.principal;
  };
  /** The signed-in clinician, or a response already sent (sign-in page, refusal) and audited. */
  const session = async (req: Request, res: Response, caller: Caller, reason?: string): Promise<Principal | undefined> => {
    const token = cookieToken(req);
    if (!token) {
      send(res, 200, viewerLayout('Sign in', signInBody([])));
      return undefined;
    }
    try {
      return await verify(token, caller, reason);
    } catch (e) {
      const err = toFhirError(e, deps.logger, rid(res));
      if (!(await audit(res, req, caller, { subtype: 'operation', operation: 'viewer-session', action: 'E', outcome: statusToOutcome(err.status), outcomeDesc: err.message }))) return undefined;
      const body = err.status === 401 ? signInBody([`Your session has ended: ${err.message}. Sign in again.`]) : errorBox([err.message]);
      send(res, err.status, viewerLayout(err.status === 401 ? 'Sign in' : 'Not allowed', body), err.status === 401 ? { 'set-cookie': CLEAR_COOKIE } : {});
      return undefined;
    }
  };

  /** Runs the search (audited before anything is shown) and renders the timeline. */
  const showResults = async (req: Request, res: Response, caller: Caller, principal: Principal, f: ViewerForm, reason?: string): Promise<void> => {
    const nhs = f.nhs.replace(/[\s-]/g, '');
    const cursor = reason === undefined && typeof req.query.cursor === 'string' && /^[A-Za-z0-9_-]{1,512}$/.test(req.query.cursor) ? req.query.cursor : undefined;
    const query = { nhs, modality: f.modality || undefined, from: f.from || undefined, to: f.to || undefined, cursor };
    let result;
    try {
      result = await findPriorImaging({ q: deps.db, principal, policy: deps.policy, fhirBase: fhirBaseOf(deps), pageSize: deps.config.maxPageSize }, query);
    } catch (e) {
      const err = toFhirError(e, deps.logger, rid(res));
      if (!(await audit(res, req, caller, { subtype: 'search-type', action: 'E', resourceType: 'ImagingStudy', patients: [nhs], outcome: statusToOutcome(err.status), outcomeDesc: err.message }))) return;
      send(res, err.status, viewerLayout('Prior imaging', html`<h1>Prior imaging</h1>${errorBox([`The search could not be completed: ${err.message}`])}${searchForm(f, {})}`, who(principal)));
      return;
    }
    const entities = result.returned.map((r) => ({ type: r.type, id: r.id, version: r.version }));
    if (!(await audit(res, req, caller, { subtype: 'search-type', action: 'E', resourceType: 'ImagingStudy', query: result.query, patients: [nhs], entities, withheld: result.withheld }))) return;
    const fq = new URLSearchParams(Object.entries(f).filter(([, v]) => v !== '') as [string, string][]);
    const next = result.next && reason === undefined ? `/viewer?${fq.toString()}&cursor=${encodeURIComponent(result.next)}` : undefined;
    const body = html`<h1>Prior imaging</h1>
${searchForm(f, {})}
${reason !== undefined ? breakGlassBanner(reason) : ''}
${result.withheld ? breakGlassNotice(f, principal.purposeOfUse === 'ETREAT') : ''}
${timeline(result, next, reason)}`;
    send(res, 200, viewerLayout('Prior imaging', body, who(principal)));
  };

  const open = async (req: Request, res: Response, source: Record<string, unknown>, reason?: string): Promise<void> => {
    const caller: Caller = {};
    const principal = await session(req, res, caller, reason);
    if (!principal) return;
    const type = str(source.type) === 'DocumentReference' ? 'DocumentReference' : 'ImagingStudy';
    const draft: AuditDraft = { patients: [], entities: [] };
    const record = (outcome: AuditOutcome, outcomeDesc?: string): Partial<AuditRecord> & Pick<AuditRecord, 'subtype' | 'action'> => ({ subtype: 'operation', operation: '$resolve', action: 'E', outcome, ...(outcomeDesc ? { outcomeDesc } : {}), ...draft });
    try {
      const resolved = await resolveFor(deps, principal, type, str(source.id), draft);
      if (!(await audit(res, req, caller, record('0')))) return;
      send(res, 200, viewerLayout('Open', openBody(resolved, reason), who(principal)));
    } catch (e) {
      const err = toFhirError(e, deps.logger, rid(res));
      if (!(await audit(res, req, caller, record(statusToOutcome(err.status), err.message)))) return;
      const message = err.status === 404 ? 'This imaging is not available to you: it does not exist, or the sharing rules withhold it.' : err.message;
      send(res, err.status, viewerLayout('Cannot open', html`<h1>This imaging cannot be opened</h1>${errorBox([message])}<p><a class="nhsuk-link" href="/viewer">Back to the search</a></p>`, who(principal)));
    }
  };

  mountViewerAssets(app);

  app.post('/viewer/login', sameOrigin, form, async (req: Request, res: Response) => {
    const token = str(req.body?.token, 8200).replace(/^Bearer\s+/i, '');
    if (!/^[A-Za-z0-9_\-.]{1,8192}$/.test(token)) {
      send(res, 400, viewerLayout('Sign in', signInBody(['Paste the whole access token (a JWT: three parts separated by dots)'])));
      return;
    }
    const caller: Caller = {};
    try {
      await verify(token, caller);
    } catch (e) {
      const err = toFhirError(e, deps.logger, rid(res));
      if (!(await audit(res, req, caller, { subtype: 'operation', operation: 'viewer-sign-in', action: 'E', outcome: statusToOutcome(err.status), outcomeDesc: err.message }))) return;
      send(res, err.status, viewerLayout('Sign in', signInBody([`Sign-in refused: ${err.message}`])));
      return;
    }
    if (!(await audit(res, req, caller, { subtype: 'operation', operation: 'viewer-sign-in', action: 'E' }))) return;
    res.setHeader('set-cookie', sessionCookie(req, VIEWER_COOKIE, '/viewer', token));
    res.redirect(303, '/viewer');
  });

  app.post('/viewer/logout', sameOrigin, (_req: Request, res: Response) => {
    res.setHeader('set-cookie', CLEAR_COOKIE);
    res.redirect(303, '/viewer');
  });

  app.get('/viewer', async (req: Request, res: Response) => {
    const caller: Caller = {};
    const principal = await session(req, res, caller);
    if (!principal) return;
    const f = readForm(req.query as Record<string, unknown>);
    if (f.nhs === '' && !('nhs' in req.query)) {
      send(res, 200, viewerLayout('Prior imaging', html`<h1>Prior imaging</h1><p>Enter the patient's NHS number to see their imaging held by every trust in the network.</p>${searchForm(f, {})}`, who(principal)));
      return;
    }
    const errors = checkForm(f);
    if (Object.keys(errors).length > 0) {
      send(res, 400, viewerLayout('Prior imaging', html`<h1>Prior imaging</h1>${errorBox(Object.values(errors))}${searchForm(f, errors)}`, who(principal)));
      return;
    }
    await showResults(req, res, caller, principal, f);
  });

  app.post('/viewer/break-glass', sameOrigin, form, async (req: Request, res: Response) => {
    const f = readForm(req.body as Record<string, unknown>);
    const reason = str(req.body?.reason, 1000);
    const caller: Caller = {};
    const principal = await session(req, res, caller, reason.length >= 10 ? reason : undefined);
    if (!principal) return;
    const errors = checkForm(f);
    if (Object.keys(errors).length > 0) {
      send(res, 400, viewerLayout('Prior imaging', html`<h1>Prior imaging</h1>${errorBox(Object.values(errors))}${searchForm(f, errors)}`, who(principal)));
      return;
    }
    if (principal.purposeOfUse !== 'ETREAT') {
      const err = forbidden('emergency access needs a sign-in whose purpose of use is ETREAT');
      if (!(await audit(res, req, caller, { subtype: 'search-type', action: 'E', resourceType: 'ImagingStudy', patients: [f.nhs.replace(/[\s-]/g, '')], outcome: '4', outcomeDesc: err.message }))) return;
      send(res, 403, viewerLayout('Not allowed', html`<h1>Emergency access is not available</h1>${errorBox(['Your sign-in does not allow emergency access. Sign in with a token whose purpose of use is ETREAT.'])}<p><a class="nhsuk-link" href="/viewer">Back to the search</a></p>`, who(principal)));
      return;
    }
    if (reason.length < 10) {
      const message = 'Enter the reason for emergency access (at least 10 characters)';
      send(res, 400, viewerLayout('Prior imaging', html`<h1>Prior imaging</h1>${errorBox([message])}${searchForm(f, {})}${breakGlassNotice(f, true, message)}`, who(principal)));
      return;
    }
    await showResults(req, res, caller, principal, f, reason);
  });

  app.get('/viewer/open', (req: Request, res: Response) => open(req, res, req.query as Record<string, unknown>));
  app.post('/viewer/open', sameOrigin, form, (req: Request, res: Response) => {
    const reason = str(req.body?.reason, 1000);
    return open(req, res, req.body as Record<string, unknown>, reason.length >= 10 ? reason : undefined);
  });
}
