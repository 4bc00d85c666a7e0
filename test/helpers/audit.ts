import { renderAuditEvent } from '../../src/audit/audit-event';
import type { Queryable } from '../../src/store/database';

/** One audit_event row as tests read it: the typed columns, and the event rendered as the review serves it. */
export interface AuditedRow {
  subtype: string;
  outcome: string;
  action: string;
  patients: string[];
  agent_user: string | null;
  agent_ods: string | null;
  purpose: string | null;
  break_glass: boolean;
  /** The BALP AuditEvent JSON (rendered from the stored facts). */
  resource: string;
}

/** The events of one request (by its X-Request-Id), in the order they were written. */
export async function auditEventsFor(db: Queryable, requestId: string): Promise<AuditedRow[]> {
  const r = await db.query<AuditedRow>(
    'select subtype, outcome, action, patients, agent_user, agent_ods, purpose, break_glass, resource from audit_event where resource like $1 order by seq',
    [`%"requestId":${JSON.stringify(requestId)}%`],
  );
  return r.rows.map((row) => ({ ...row, resource: renderAuditEvent(row.resource) }));
}
