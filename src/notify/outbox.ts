import type { Queryable } from '../store/database';
import type { VersionRow } from '../store/resource-rows';
import type { PointerChange } from './topic';
import { POINTER_TYPES } from './topic';

/**
 * Transactional outbox (DSUBm publisher side): called by the write engine inside the pointer's
 * own transaction, so an event exists exactly when its pointer change committed and a crash
 * between commit and delivery loses nothing. One INSERT for every change of the request.
 * Nothing is written while no subscription could want it (the outbox would only grow).
 */
export async function recordPointerChanges(tx: Queryable, versions: readonly VersionRow[], superseded: ReadonlySet<string>): Promise<void> {
  const rows = versions.filter((v) => (POINTER_TYPES as readonly string[]).includes(v.resource_type));
  if (rows.length === 0) return;
  const change = (v: VersionRow): PointerChange =>
    v.deleted ? 'delete' : superseded.has(`${v.resource_type}/${v.id}`) ? 'supersede' : v.version === 1 ? 'create' : 'update';
  await tx.query(
    `insert into notify_outbox (resource_type, resource_id, version, change, patient_nhs, custodian_ods)
     select * from unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::text[], $6::text[])
      where exists (select 1 from subscription where status <> 'off')`,
    [
      rows.map((v) => v.resource_type),
      rows.map((v) => v.id),
      rows.map((v) => v.version),
      rows.map(change),
      rows.map((v) => v.patient_nhs ?? ''),
      rows.map((v) => v.custodian_ods ?? ''),
    ],
  );
}
