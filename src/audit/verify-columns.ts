import type { AuditIndexColumns, StoredAuditEvent } from './audit-event';
import { auditColumnsOf, isStoredFacts } from './audit-event';
import { NHS_NUMBER_SYSTEM } from '../registry/nhs-number';

/** An `audit_event` row as verification reads it. */
export interface VerifyRow extends AuditIndexColumns {
  seq: number;
  id: string;
  chain_pos: number;
  hash: Uint8Array;
  resource: string;
  recorded: Date;
}

interface StoredEvent {
  id?: string;
  recorded?: string;
  action?: string;
  outcome?: string;
  subtype?: { code?: string }[];
  meta?: { security?: { code?: string }[] };
  purposeOfEvent?: { coding?: { code?: string }[] }[];
  agent?: { type?: { coding?: { code?: string }[] }; who?: { identifier?: { value?: string } } }[];
  entity?: { what?: { identifier?: { system?: string; value?: string } } }[];
}

function agentValue(e: StoredEvent, typeCode: string): string | undefined {
  return e.agent?.find((a) => a.type?.coding?.[0]?.code === typeCode)?.who?.identifier?.value;
}

/**
 * The hash covers the event text; reviews filter on the typed columns beside it. A column edited
 * to hide an event from a search (say agent_user) is tampering too, so each column is compared
 * with the value the writer derived from the same facts (audit-event.ts, auditColumnsOf).
 * Returns the first column that disagrees, or undefined.
 */
export function columnMismatch(row: VerifyRow): string | undefined {
  let e: { id?: unknown; recorded?: unknown };
  try {
    e = JSON.parse(row.resource) as { id?: unknown; recorded?: unknown };
  } catch {
    return 'resource';
  }
  if (e.id !== row.id) return 'id';
  if (typeof e.recorded !== 'string' || new Date(e.recorded).getTime() !== new Date(row.recorded).getTime()) return 'recorded';
  return isStoredFacts(row.resource) ? factsColumnMismatch(e as StoredAuditEvent, row) : balpColumnMismatch(e as StoredEvent, row);
}

function factsColumnMismatch(e: StoredAuditEvent, row: VerifyRow): string | undefined {
  const want = auditColumnsOf(e);
  for (const column of ['action', 'outcome', 'subtype', 'purpose', 'break_glass', 'agent_user', 'agent_ods'] as const) {
    if (want[column] !== row[column]) return column;
  }
  if (want.patients.join(',') !== row.patients.join(',')) return 'patients';
  return undefined;
}

/** Rows written before format 1 hold the BALP AuditEvent itself. */
function balpColumnMismatch(e: StoredEvent, row: VerifyRow): string | undefined {
  if (e.action !== row.action) return 'action';
  if (e.outcome !== row.outcome) return 'outcome';
  if (e.subtype?.[0]?.code !== row.subtype) return 'subtype';
  if ((e.purposeOfEvent?.[0]?.coding?.[0]?.code ?? null) !== row.purpose) return 'purpose';
  if ((e.meta?.security?.some((s) => s.code === 'BTG') ?? false) !== row.break_glass) return 'break_glass';
  // No user at all was written as the identifier value 'anonymous'.
  if ((row.agent_user ?? 'anonymous') !== agentValue(e, 'humanuser')) return 'agent_user';
  if ((row.agent_ods || undefined) !== agentValue(e, 'PROV')) return 'agent_ods';
  const patients = [...new Set((e.entity ?? []).flatMap((x) => (x.what?.identifier?.system === NHS_NUMBER_SYSTEM && x.what.identifier.value ? [x.what.identifier.value] : [])))];
  if (patients.join(',') !== row.patients.join(',')) return 'patients';
  return undefined;
}
