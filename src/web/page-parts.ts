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

export interface PageShell {
  /** The service name shown in the header and the title, e.g. "Locus audit review". */
  service: string;
  /** The page family's path, e.g. "/audit": assets under `${base}/assets`, sign-out at `${base}/logout`. */
  base: string;
  /** The page family's own stylesheet in its assets. */
  css: string;
  /** The header's service link. */
  serviceLink: Html;
  title: string;
  body: Html;
  who?: string;
  wide?: boolean;
}

/** The NHS design system page around a server-rendered body (works without JavaScript). */
export function pageShell(p: PageShell): string {
  return html`<!DOCTYPE html>
<html lang="en-GB">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${p.title} – ${p.service}</title>
<link rel="stylesheet" href="${p.base}/assets/nhsuk-frontend.min.css">
<link rel="stylesheet" href="${p.base}/assets/${p.css}">
</head>
<body>
<a class="nhsuk-skip-link" href="#main">Skip to main content</a>
<header class="nhsuk-header" role="banner">
<div class="nhsuk-header__container nhsuk-width-container">
<div class="nhsuk-header__service">${p.serviceLink}</div>
${p.who ? html`<form class="locus-signout" method="post" action="${p.base}/logout"><span class="locus-who">Signed in as ${p.who}</span> <button class="nhsuk-button nhsuk-button--reverse nhsuk-button--small" type="submit">Sign out</button></form>` : ''}
</div>
</header>
<div class="nhsuk-width-container${p.wide ? ' locus-wide' : ''}">
<main class="nhsuk-main-wrapper" id="main">
${p.body}
</main>
</div>
</body>
</html>`.text;
}
