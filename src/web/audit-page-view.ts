import type { AuditRow } from '../audit/audit-search';
import type { Html } from './html';
import { html, trusted } from './html';
import { errorSummary, pageShell } from './page-parts';

export { errorSummary };

const NHS_LOGO = trusted(
  '<svg class="nhsuk-header__logo" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 200 80" height="40" width="100" focusable="false" role="img" aria-label="NHS"><title>NHS</title><path fill="currentcolor" d="M200 0v80H0V0h200Zm-27.5 5.5c-14.5 0-29 5-29 22 0 10.2 7.7 13.5 14.7 16.3l.7.3c5.4 2 10.1 3.9 10.1 8.4 0 6.5-8.5 7.5-14 7.5s-12.5-1.5-16-3.5L135 70c5.5 2 13.5 3.5 20 3.5 15.5 0 32-4.5 32-22.5 0-19.5-25.5-16.5-25.5-25.5 0-5.5 5.5-6.5 12.5-6.5a35 35 0 0 1 14.5 3l4-13.5c-4.5-2-12-3-20-3Zm-131 2h-22l-14 65H22l9-45h.5l13.5 45h21.5l14-65H64l-9 45h-.5l-13-45Zm63 0h-18l-13 65h17l6-28H117l-5.5 28H129l13.5-65H125L119.5 32h-20l5-24.5Z"/></svg>',
);

/** The form's fields, as typed by the auditor (re-shown as typed, escaped). */
export interface PageFilter {
  patient: string;
  user: string;
  org: string;
  from: string;
  to: string;
  outcome: '' | 'success' | 'failure';
  breakGlass: boolean;
}

export function layout(title: string, body: Html, signedIn?: { who: string }): string {
  return pageShell({
    service: 'Locus audit review',
    base: '/audit',
    css: 'audit.css',
    serviceLink: html`<a class="nhsuk-header__service-logo" href="/audit" aria-label="NHS Locus audit review homepage">${NHS_LOGO}<span class="nhsuk-header__service-name">Locus audit review</span></a>`,
    title,
    body,
    who: signedIn?.who,
    wide: true,
  });
}


export function loginBody(errors: string[], dev: boolean): Html {
  return html`<h1>Sign in to review the audit trail</h1>
${errorSummary(errors)}
<p>Paste an access token issued to you with the <strong>auditor</strong> role. It is kept in a secure cookie for this page only, and every review you make is itself recorded in the audit trail.</p>
<form method="post" action="/audit/login" novalidate>
<div class="nhsuk-form-group">
<label class="nhsuk-label" for="token">Access token</label>
<textarea class="nhsuk-textarea" id="token" name="token" rows="4" autocomplete="off" spellcheck="false"></textarea>
</div>
<button class="nhsuk-button" type="submit">Sign in</button>
</form>
${dev ? html`<form method="post" action="/audit/dev-login"><div class="nhsuk-inset-text"><p>This server runs the development token issuer.</p>
<div class="nhsuk-form-group"><label class="nhsuk-label" for="dev-org">Organisation (ODS code)</label><input class="nhsuk-input nhsuk-input--width-10" id="dev-org" name="org" value="X26" autocomplete="off"></div>
<button class="nhsuk-button nhsuk-button--secondary" type="submit">Sign in as a development auditor</button></div></form>` : ''}`;
}

function input(id: string, label: string, value: string, hint: string, width: string, error?: string): Html {
  return html`<div class="nhsuk-form-group locus-field${error ? ' nhsuk-form-group--error' : ''}">
<label class="nhsuk-label" for="${id}">${label}</label>
<div class="nhsuk-hint" id="${id}-hint">${hint}</div>
${error ? html`<span class="nhsuk-error-message" id="${id}-error"><span class="nhsuk-u-visually-hidden">Error:</span> ${error}</span>` : ''}
<input class="nhsuk-input ${width}${error ? ' nhsuk-input--error' : ''}" id="${id}" name="${id}" type="text" value="${value}" aria-describedby="${id}-hint" autocomplete="off">
</div>`;
}

export function filterForm(f: PageFilter, fieldErrors: Record<string, string>): Html {
  return html`<form method="get" action="/audit" class="locus-filter" novalidate>
<fieldset class="nhsuk-fieldset"><legend class="nhsuk-fieldset__legend nhsuk-fieldset__legend--s">Filter events</legend>
<div class="locus-fields">
${input('patient', 'Patient NHS number', f.patient, '10 digits', 'nhsuk-input--width-10', fieldErrors.patient)}
${input('user', 'User', f.user, 'User id from the token', 'nhsuk-input--width-20', fieldErrors.user)}
${input('org', 'Organisation', f.org, 'ODS code', 'nhsuk-input--width-5', fieldErrors.org)}
${input('from', 'From', f.from, 'YYYY-MM-DD', 'nhsuk-input--width-10', fieldErrors.from)}
${input('to', 'To', f.to, 'YYYY-MM-DD (inclusive)', 'nhsuk-input--width-10', fieldErrors.to)}
<div class="nhsuk-form-group locus-field"><label class="nhsuk-label" for="outcome">Outcome</label><div class="nhsuk-hint">Success or refused/failed</div>
<select class="nhsuk-select" id="outcome" name="outcome">
<option value=""${f.outcome === '' ? html` selected` : ''}>Any</option>
<option value="success"${f.outcome === 'success' ? html` selected` : ''}>Success</option>
<option value="failure"${f.outcome === 'failure' ? html` selected` : ''}>Refused or failed</option>
</select></div>
</div>
<div class="nhsuk-checkboxes nhsuk-checkboxes--small"><div class="nhsuk-checkboxes__item">
<input class="nhsuk-checkboxes__input" id="breakGlass" name="breakGlass" type="checkbox" value="true"${f.breakGlass ? html` checked` : ''}>
<label class="nhsuk-label nhsuk-checkboxes__label" for="breakGlass">Break-glass (emergency) accesses only</label>
</div></div>
</fieldset>
<button class="nhsuk-button locus-apply" type="submit">Apply filter</button> <a class="nhsuk-link locus-clear" href="/audit">Clear filter</a>
</form>`;
}

const OUTCOMES: Record<string, string> = { '0': 'Success', '4': 'Refused', '8': 'Failed', '12': 'Failed (major)' };
const ACTIONS: Record<string, string> = { C: 'Create', R: 'Read', U: 'Update', D: 'Delete', E: 'Search/execute' };

export function resultsTable(rows: AuditRow[]): Html {
  if (rows.length === 0) return html`<p class="nhsuk-body">No audit events match this filter.</p>`;
  return html`<div class="locus-table-wrap"><table class="nhsuk-table locus-results">
<caption class="nhsuk-table__caption nhsuk-u-visually-hidden">Audit events, newest first</caption>
<thead class="nhsuk-table__head"><tr class="nhsuk-table__row">
<th scope="col" class="nhsuk-table__header">Recorded (UTC)</th><th scope="col" class="nhsuk-table__header">User</th><th scope="col" class="nhsuk-table__header">Organisation</th>
<th scope="col" class="nhsuk-table__header">Interaction</th><th scope="col" class="nhsuk-table__header">Patients</th><th scope="col" class="nhsuk-table__header">Purpose</th><th scope="col" class="nhsuk-table__header">Outcome</th>
</tr></thead>
<tbody class="nhsuk-table__body">
${rows.map(
  (r) => html`<tr class="nhsuk-table__row${r.break_glass ? ' locus-break-glass' : ''}">
<td class="nhsuk-table__cell">${r.recorded.toISOString().replace('T', ' ').slice(0, 19)}</td>
<td class="nhsuk-table__cell locus-user">${r.agent_user ?? 'unknown'}</td>
<td class="nhsuk-table__cell">${r.agent_ods ?? ''}</td>
<td class="nhsuk-table__cell">${ACTIONS[r.action] ?? r.action} <span class="nhsuk-body-s locus-muted">(${r.subtype})</span></td>
<td class="nhsuk-table__cell">${r.patients.join(', ')}</td>
<td class="nhsuk-table__cell">${r.break_glass ? html`<strong class="nhsuk-tag nhsuk-tag--red">Break-glass</strong> ` : ''}${r.purpose ?? ''}</td>
<td class="nhsuk-table__cell">${r.outcome === '0' ? OUTCOMES['0'] : html`<strong class="nhsuk-tag nhsuk-tag--orange">${OUTCOMES[r.outcome] ?? r.outcome}</strong>`}</td>
</tr>`,
)}
</tbody></table></div>`;
}

export function pagination(prevHref: string | undefined, nextHref: string | undefined): Html {
  if (!prevHref && !nextHref) return html``;
  return html`<nav class="nhsuk-pagination" role="navigation" aria-label="Pagination"><ul class="nhsuk-list nhsuk-pagination__list">
${prevHref ? html`<li class="nhsuk-pagination-item--previous"><a class="nhsuk-pagination__link nhsuk-pagination__link--prev" href="${prevHref}"><span class="nhsuk-pagination__title">Newer events</span></a></li>` : ''}
${nextHref ? html`<li class="nhsuk-pagination-item--next"><a class="nhsuk-pagination__link nhsuk-pagination__link--next" href="${nextHref}"><span class="nhsuk-pagination__title">Older events</span></a></li>` : ''}
</ul></nav>`;
}

export const AUDIT_CSS = `
.locus-wide{max-width:1200px}
.locus-fields{display:flex;flex-wrap:wrap;gap:0 24px}
.locus-field{margin-bottom:16px}
.locus-apply{margin-bottom:0;margin-right:16px}
.locus-break-glass{background:#fde8e6}
.locus-break-glass td:first-child{box-shadow:inset 5px 0 0 #d5281b}
.locus-muted{color:#4c6272}
.locus-user{word-break:break-all}
.locus-table-wrap{overflow-x:auto}
.locus-results{font-size:16px}
.locus-chart{margin:0 0 24px 0;background:#fff;padding:16px;border:1px solid #d8dde0}
.locus-legend{list-style:none;padding:0;margin:8px 0 0 0;display:flex;flex-wrap:wrap;gap:4px 20px;font-size:16px}
.locus-signout{display:flex;align-items:center;gap:12px;margin-left:auto;color:#fff}
.locus-signout .nhsuk-button{margin:0}
.locus-who{font-size:16px;color:#fff}
.locus-actions{display:flex;gap:16px;align-items:center;flex-wrap:wrap;margin-bottom:16px}
`;
