import { isValidNhsNumber } from '../registry/nhs-number';
import { dateRange } from '../registry/fhir-datatypes';
import type { PageFilter } from './audit-page-view';

const field = (q: Record<string, unknown>, name: string, max = 256): string => {
  const v = q[name];
  return typeof v === 'string' ? v.trim().slice(0, max) : '';
};

/** The page's filter from its query string (unknown fields ignored, long values cut). */
export function readFilter(q: Record<string, unknown>): PageFilter {
  const outcome = field(q, 'outcome');
  return {
    patient: field(q, 'patient', 32).replace(/\s+/g, ''),
    user: field(q, 'user'),
    org: field(q, 'org', 16).toUpperCase(),
    from: field(q, 'from', 32),
    to: field(q, 'to', 32),
    outcome: outcome === 'success' || outcome === 'failure' ? outcome : '',
    breakGlass: field(q, 'breakGlass') === 'true',
  };
}

const isDay = (v: string): boolean => /^\d{4}-\d{2}-\d{2}$/.test(v) && dateRange(v) !== undefined && new Date(`${v}T00:00:00Z`).toISOString().startsWith(v);

/** Form fields → AuditEvent search parameters (the same ones the FHIR API takes), or field errors. */
export function filterParams(f: PageFilter): { params: [string, string][]; errors: Record<string, string> } {
  const params: [string, string][] = [];
  const errors: Record<string, string> = {};
  if (f.patient) {
    if (isValidNhsNumber(f.patient)) params.push(['patient', f.patient]);
    else errors.patient = 'Enter a valid 10 digit NHS number';
  }
  if (f.user) params.push(['agent', f.user]);
  if (f.org) {
    if (/^[A-Z0-9]{1,10}$/.test(f.org)) params.push(['organization', f.org]);
    else errors.org = 'Enter an ODS code: letters and digits only';
  }
  if (f.from) {
    if (isDay(f.from)) params.push(['date', `ge${f.from}`]);
    else errors.from = 'Enter the start date as YYYY-MM-DD';
  }
  if (f.to) {
    if (isDay(f.to)) params.push(['date', `le${f.to}`]);
    else errors.to = 'Enter the end date as YYYY-MM-DD';
  }
  if (f.from && f.to && !errors.from && !errors.to && f.from > f.to) errors.to = 'The end date must be on or after the start date';
  if (f.outcome === 'success') params.push(['outcome', '0']);
  if (f.outcome === 'failure') params.push(['outcome', '4,8,12']);
  if (f.breakGlass) params.push(['break-glass', 'true']);
  return { params, errors };
}

/** The form fields as a query string, to carry the filter into paging and export links. */
export function filterQuery(f: PageFilter): string {
  const entries: [string, string][] = [];
  for (const k of ['patient', 'user', 'org', 'from', 'to', 'outcome'] as const) if (f[k]) entries.push([k, f[k]]);
  if (f.breakGlass) entries.push(['breakGlass', 'true']);
  return new URLSearchParams(entries).toString();
}

/** The chart's window: the filter's dates when given (at most 92 days), else the 30 days to today. */
export function chartWindow(f: PageFilter, now: Date): { until: Date; days: number } {
  const until = f.to && isDay(f.to) ? new Date(`${f.to}T00:00:00Z`) : now;
  if (f.from && isDay(f.from)) {
    const days = Math.floor((Date.UTC(until.getUTCFullYear(), until.getUTCMonth(), until.getUTCDate()) - new Date(`${f.from}T00:00:00Z`).getTime()) / 86_400_000) + 1;
    if (days >= 1) return { until, days: Math.min(days, 92) };
  }
  return { until, days: 30 };
}
