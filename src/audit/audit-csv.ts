import { renderAuditEvent } from './audit-event';
import type { AuditRow } from './audit-search';

export const CSV_HEADER = 'id,recorded,action,subtype,outcome,user,organisation,purpose,break_glass,patients\r\n';

/**
 * One CSV field (RFC 4180): quoted when it holds a comma, quote, CR or LF, quotes doubled. A
 * field that a spreadsheet would run as a formula (= + - @ tab CR first) gets a leading
 * apostrophe (OWASP CSV injection): user ids come from tokens, which callers choose.
 */
export function csvField(value: string): string {
  const safe = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

export function csvRow(r: AuditRow): string {
  return `${[
    r.id,
    r.recorded.toISOString(),
    r.action,
    r.subtype,
    r.outcome,
    r.agent_user ?? '',
    r.agent_ods ?? '',
    r.purpose ?? '',
    r.break_glass ? 'true' : 'false',
    r.patients.join(' '),
  ]
    .map(csvField)
    .join(',')}\r\n`;
}

/** NDJSON for a SIEM: one AuditEvent per line (JSON.stringify never writes a raw newline). */
export function ndjsonRow(r: AuditRow): string {
  return `${renderAuditEvent(r.resource as string)}\n`;
}
