import { randomInt, randomUUID } from 'node:crypto';
import type { Queryable } from '../store/database';
import type { AuditRecord } from './audit-event';
import { buildAuditEvent, isBreakGlassRecord } from './audit-event';

/** Independent hash chains: a request locks one chain's head for one statement, so requests rarely queue. */
export const AUDIT_CHAINS = 16;

export interface AuditWriter {
  readonly enabled: boolean;
  write(q: Queryable, record: AuditRecord): Promise<void>;
}

/**
 * Appends one AuditEvent in a single statement: the chain head advances to
 * sha256(previous head || event text) and the event row stores that hash and its position.
 * Inside a write transaction it commits with the pointer change; on reads it is durable before
 * the response is sent (the caller awaits it and fails the request when it throws).
 */
const INSERT = `with h as (
    update audit_chain set pos = pos + 1, head = sha256(head || convert_to($1::text, 'UTF8'))
     where chain = $2 returning pos, head)
  insert into audit_event (id, recorded, chain, chain_pos, hash, patients, agent_ods, agent_user, action, subtype, outcome, purpose, break_glass, resource)
  select $3, $4::timestamptz, $2, h.pos, h.head, $5::text[], $6, $7, $8, $9, $10, $11, $12, $1::text from h`;

export function createAuditWriter(enabled: boolean): AuditWriter {
  return {
    enabled,
    async write(q: Queryable, record: AuditRecord): Promise<void> {
      if (!enabled) return;
      const recorded = new Date();
      const id = randomUUID();
      const text = JSON.stringify(buildAuditEvent(record, recorded, id));
      const subtype = record.subtype === 'operation' ? (record.operation ?? 'operation') : record.subtype;
      await q.query(INSERT, [
        text,
        randomInt(AUDIT_CHAINS),
        id,
        recorded,
        [...new Set(record.patients)],
        record.principal?.organization ?? record.claimed?.organization ?? null,
        record.principal?.subject ?? record.claimed?.subject ?? null,
        record.action,
        subtype,
        record.outcome,
        record.principal?.purposeOfUse ?? null,
        isBreakGlassRecord(record),
      ]);
    },
  };
}
