import type { PriorImaging, TimelineStudy } from '../resolve/prior-imaging';
import type { ResolvedStudy } from '../resolve/resolve-study';
import type { Html } from './html';
import { html } from './html';
import { errorSummary, pageShell } from './page-parts';

/** The error summary box (shared with the audit page). */
export const errorBox = errorSummary;

/** The search form as the clinician typed it (re-shown escaped). */
export interface ViewerForm {
  nhs: string;
  modality: string;
  from: string;
  to: string;
}

export const MODALITY_CHOICES = ['CT', 'MR', 'US', 'CR', 'DX', 'MG', 'NM', 'PT', 'XA', 'RF', 'OT'];

export function viewerLayout(title: string, body: Html, who?: string): string {
  return pageShell({
    service: 'Locus prior imaging',
    base: '/viewer',
    css: 'viewer.css',
    serviceLink: html`<a class="nhsuk-header__service-logo locus-service" href="/viewer"><span class="nhsuk-header__service-name">Locus prior imaging</span></a>`,
    title,
    body,
    who,
  });
}


export function signInBody(errors: string[]): Html {
  return html`<h1>Sign in to see prior imaging</h1>
${errorBox(errors)}
<p>Paste an access token issued to you as a clinician. It is kept in a secure cookie for this page only; every search and every study you open is recorded in the audit trail.</p>
<p>For emergency (break-glass) access, sign in with a token whose purpose of use is <strong>ETREAT</strong>: you will then be asked for a reason each time you use it.</p>
<form method="post" action="/viewer/login" novalidate>
<div class="nhsuk-form-group"><label class="nhsuk-label" for="token">Access token</label>
<textarea class="nhsuk-textarea" id="token" name="token" rows="4" autocomplete="off" spellcheck="false"></textarea></div>
<button class="nhsuk-button" type="submit">Sign in</button>
</form>`;
}

function field(id: keyof ViewerForm, label: string, hint: string, value: string, width: string, error?: string): Html {
  return html`<div class="nhsuk-form-group locus-field${error ? ' nhsuk-form-group--error' : ''}">
<label class="nhsuk-label" for="${id}">${label}</label><div class="nhsuk-hint" id="${id}-hint">${hint}</div>
${error ? html`<span class="nhsuk-error-message" id="${id}-error"><span class="nhsuk-u-visually-hidden">Error:</span> ${error}</span>` : ''}
<input class="nhsuk-input ${width}${error ? ' nhsuk-input--error' : ''}" id="${id}" name="${id}" type="text" value="${value}" aria-describedby="${id}-hint" autocomplete="off"${id === 'nhs' ? html` inputmode="numeric" spellcheck="false"` : ''}>
</div>`;
}

export function searchForm(f: ViewerForm, errors: Partial<Record<keyof ViewerForm, string>>): Html {
  return html`<form method="get" action="/viewer" class="locus-search" novalidate>
<div class="locus-fields">
${field('nhs', 'NHS number', '10 digits; spaces are fine', f.nhs, 'nhsuk-input--width-10', errors.nhs)}
<div class="nhsuk-form-group locus-field"><label class="nhsuk-label" for="modality">Modality</label><div class="nhsuk-hint">Any, or one kind of imaging</div>
<select class="nhsuk-select" id="modality" name="modality"><option value="">Any</option>${MODALITY_CHOICES.map((m) => html`<option value="${m}"${f.modality === m ? html` selected` : ''}>${m}</option>`)}</select></div>
${field('from', 'From', 'YYYY-MM-DD', f.from, 'nhsuk-input--width-10', errors.from)}
${field('to', 'To', 'YYYY-MM-DD (inclusive)', f.to, 'nhsuk-input--width-10', errors.to)}
</div>
<button class="nhsuk-button locus-find" type="submit">Find imaging</button>
</form>`;
}

const dateOf = (iso: string): string => (iso ? new Date(iso).toLocaleDateString('en-GB', { day: 'numeric', month: 'long', year: 'numeric', timeZone: 'Europe/London' }) : 'Date unknown');

/** Open and Report actions: links normally; under break-glass, forms that carry the reason (POST keeps it out of URLs and logs). */
function action(label: string, type: 'ImagingStudy' | 'DocumentReference', id: string, cls: string, reason?: string): Html {
  if (reason === undefined) return html`<a class="nhsuk-link ${cls}" href="/viewer/open?type=${type}&amp;id=${encodeURIComponent(id)}">${label}</a>`;
  return html`<form class="locus-inline" method="post" action="/viewer/open"><input type="hidden" name="type" value="${type}"><input type="hidden" name="id" value="${id}"><input type="hidden" name="reason" value="${reason}"><button class="nhsuk-button nhsuk-button--secondary nhsuk-button--small ${cls}" type="submit">${label}</button></form>`;
}

function studyCard(s: TimelineStudy, reason?: string): Html {
  const counts = [s.numberOfSeries !== undefined ? `${s.numberOfSeries} series` : '', s.numberOfInstances !== undefined ? `${s.numberOfInstances} images` : ''].filter(Boolean).join(', ');
  return html`<li class="locus-study" data-study-id="${s.id}">
<h3 class="nhsuk-heading-s locus-study-title">${s.description ?? 'Imaging study'}</h3>
<dl class="nhsuk-summary-list locus-facts">
<div class="nhsuk-summary-list__row"><dt class="nhsuk-summary-list__key">Date</dt><dd class="nhsuk-summary-list__value locus-date">${dateOf(s.started)}</dd></div>
<div class="nhsuk-summary-list__row"><dt class="nhsuk-summary-list__key">Modality</dt><dd class="nhsuk-summary-list__value locus-modality">${s.modalities.join(', ') || 'Not recorded'}</dd></div>
<div class="nhsuk-summary-list__row"><dt class="nhsuk-summary-list__key">Body site</dt><dd class="nhsuk-summary-list__value locus-body-site">${s.bodySites.join(', ') || 'Not recorded'}</dd></div>
<div class="nhsuk-summary-list__row"><dt class="nhsuk-summary-list__key">Held by</dt><dd class="nhsuk-summary-list__value locus-custodian">${s.custodianName ?? s.custodian} (${s.custodian})</dd></div>
<div class="nhsuk-summary-list__row"><dt class="nhsuk-summary-list__key">Series and images</dt><dd class="nhsuk-summary-list__value locus-counts">${counts || 'Not recorded'}</dd></div>
<div class="nhsuk-summary-list__row"><dt class="nhsuk-summary-list__key">Report</dt><dd class="nhsuk-summary-list__value locus-report">${s.reportIds.length > 0 ? html`<strong class="nhsuk-tag nhsuk-tag--green">Report available</strong>` : html`<strong class="nhsuk-tag nhsuk-tag--grey">No report</strong>`}</dd></div>
</dl>
<div class="locus-actions">${action('Open', 'ImagingStudy', s.id, 'locus-open', reason)}${s.reportIds.map((r) => action('Report', 'DocumentReference', r, 'locus-report-link', reason))}</div>
</li>`;
}

/** The timeline: newest year first, each year's studies newest first (the search order). */
export function timeline(result: PriorImaging, nextHref?: string, reason?: string): Html {
  if (result.studies.length === 0) return html`<p class="nhsuk-body locus-empty">No imaging was found for this patient${result.withheld ? ' that you may see' : ''} with these filters.</p>`;
  const years = new Map<string, TimelineStudy[]>();
  for (const s of result.studies) {
    const y = s.started ? s.started.slice(0, 4) : 'Date unknown';
    years.set(y, [...(years.get(y) ?? []), s]);
  }
  return html`<h2 class="nhsuk-heading-m locus-count">${result.studies.length} stud${result.studies.length === 1 ? 'y' : 'ies'}</h2>
<div class="locus-timeline">${[...years].map(
    ([year, studies]) => html`<section class="locus-year" aria-labelledby="year-${year}"><h2 class="nhsuk-heading-l locus-year-heading" id="year-${year}">${year}</h2>
<ol class="nhsuk-list locus-studies">${studies.map((s) => studyCard(s, reason))}</ol></section>`,
  )}</div>
${nextHref ? html`<p><a class="nhsuk-link locus-older" href="${nextHref}">Older imaging</a></p>` : ''}`;
}

/** Shown when consent or sharing rules withheld results that emergency access could reveal. */
export function breakGlassNotice(f: ViewerForm, canBreakGlass: boolean, error?: string): Html {
  return html`<div class="nhsuk-warning-callout locus-break-glass" id="break-glass">
<h3 class="nhsuk-warning-callout__label"><span role="text"><span class="nhsuk-u-visually-hidden">Important: </span>Some imaging is withheld</span></h3>
<p>The patient's consent or the sharing rules withhold some of this patient's imaging from you. In an emergency you may see it by stating why; your reason and everything you see are recorded and reviewed.</p>
${canBreakGlass
    ? html`<form method="post" action="/viewer/break-glass" novalidate>
<input type="hidden" name="nhs" value="${f.nhs}"><input type="hidden" name="modality" value="${f.modality}"><input type="hidden" name="from" value="${f.from}"><input type="hidden" name="to" value="${f.to}">
<div class="nhsuk-form-group${error ? ' nhsuk-form-group--error' : ''}"><label class="nhsuk-label" for="reason">Reason for emergency access</label><div class="nhsuk-hint" id="reason-hint">At least 10 characters, for example "Unconscious patient in resus, no history available"</div>
${error ? html`<span class="nhsuk-error-message" id="reason-error"><span class="nhsuk-u-visually-hidden">Error:</span> ${error}</span>` : ''}
<textarea class="nhsuk-textarea${error ? ' nhsuk-textarea--error' : ''}" id="reason" name="reason" rows="3" aria-describedby="reason-hint"></textarea></div>
<button class="nhsuk-button nhsuk-button--warning locus-break-glass-button" type="submit">Show withheld imaging (emergency access)</button>
</form>`
    : html`<p class="locus-no-etreat">Your sign-in does not allow emergency access. Sign in with a token whose purpose of use is ETREAT to use it.</p>`}
</div>`;
}

export function breakGlassBanner(reason: string): Html {
  return html`<div class="nhsuk-error-summary locus-emergency" role="status"><h2 class="nhsuk-error-summary__title">Emergency access in use</h2><p>Reason recorded: ${reason}</p></div>`;
}

function link(label: string, url: string, cls: string): Html {
  return html`<div class="nhsuk-summary-list__row"><dt class="nhsuk-summary-list__key">${label}</dt><dd class="nhsuk-summary-list__value"><code class="${cls}">${url}</code></dd></div>`;
}

/** After `$resolve`: launch the viewer, or hand a DICOMweb client the gateway URL and the retrieval token. */
export function openBody(r: ResolvedStudy, reason?: string): Html {
  const what = r.type === 'DocumentReference' ? 'Report' : 'Study';
  return html`<h1>${what} ready to open</h1>
${reason !== undefined ? breakGlassBanner(reason) : ''}
<p>Held by ${r.custodian}. Study Instance UID <code class="locus-uid">${r.studyUid}</code>.</p>
<a class="nhsuk-button locus-launch" href="${r.viewerUrl}" rel="noreferrer noopener">Open in the image viewer</a>
<h2 class="nhsuk-heading-m">For DICOMweb clients</h2>
<p>The retrieval token below lets a DICOMweb client fetch this study only, through this registry's gateway or the custodian's own gateway, until ${r.tokenExpires.toISOString().slice(11, 16)} UTC. Send it as <code>Authorization: Bearer</code>.</p>
<dl class="nhsuk-summary-list locus-urls">
${link('Gateway (WADO-RS)', r.gatewayStudyUrl, 'locus-gateway-url')}
${link("Custodian's WADO-RS", r.wadoRsStudyUrl, 'locus-wado-url')}
${link("Custodian's QIDO-RS", r.qidoRsUrl, 'locus-qido-url')}
${r.attachmentUrl ? link('Report document', r.attachmentUrl, 'locus-attachment-url') : ''}
</dl>
<div class="nhsuk-form-group"><label class="nhsuk-label" for="retrieval-token">Retrieval token</label><textarea class="nhsuk-textarea locus-token" id="retrieval-token" rows="4" readonly spellcheck="false">${r.token}</textarea></div>
<p><a class="nhsuk-link" href="/viewer">Back to the search</a></p>`;
}

export const VIEWER_CSS = `
.locus-service{text-decoration:none}
.locus-signout{display:flex;align-items:center;gap:12px;color:#fff;margin-left:auto}
.locus-signout .nhsuk-button{margin-bottom:0}
.locus-fields{display:flex;flex-wrap:wrap;gap:0 24px}
.locus-field{margin-bottom:16px}
.locus-find{margin-bottom:0}
.locus-year{border-left:4px solid #005eb8;padding-left:20px;margin-bottom:24px}
.locus-studies{margin:0}
.locus-study{background:#fff;border:1px solid #d8dde0;padding:16px 20px 8px;margin-bottom:16px;list-style:none}
.locus-facts{margin-bottom:12px}
.locus-actions{display:flex;gap:16px;align-items:center;margin-bottom:8px}
.locus-inline{display:inline;margin:0}
.locus-inline .nhsuk-button{margin-bottom:0}
.locus-token{font-family:monospace;font-size:14px;word-break:break-all}
.locus-urls code{word-break:break-all}
`;
