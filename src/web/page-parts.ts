import type { Request } from 'express';
import { decodeJwt } from 'jose';
import type { Html } from './html';
import { html } from './html';

/**
 * The session cookie of a page that signs in by pasted token (/audit, /viewer): HttpOnly,
 * SameSite=Strict, scoped to the page's path, and no longer-lived than the token (8 hours at most).
 */
export function sessionCookie(req: Request, name: string, path: string, token: string): string {
  let maxAge = 8 * 3600;
  try {
    const exp = decodeJwt(token).exp;
    if (typeof exp === 'number') maxAge = Math.max(0, Math.min(maxAge, exp - Math.floor(Date.now() / 1000)));
  } catch {
    // verified already; an unreadable exp keeps the default
  }
  return `${name}=${token}; HttpOnly; SameSite=Strict; Path=${path}; Max-Age=${maxAge}${req.secure ? '; Secure' : ''}`;
}

/** The NHS design system's error summary, for a page's problems (nothing when there are none). */
export function errorSummary(messages: string[]): Html {
  if (messages.length === 0) return html``;
  return html`<div class="nhsuk-error-summary" aria-labelledby="error-summary-title" role="alert" tabindex="-1">
<h2 class="nhsuk-error-summary__title" id="error-summary-title">There is a problem</h2>
<div class="nhsuk-error-summary__body"><ul class="nhsuk-list nhsuk-error-summary__list">${messages.map((m) => html`<li>${m}</li>`)}</ul></div>
</div>`;
}
