import type { Database } from '../store/database';

/**
 * Moves committed outbox rows to the subscriptions they match, numbering each subscription's
 * events without gaps (events-since-subscription-start). One statement per batch, under a
 * transaction-scoped advisory lock so that API nodes never number concurrently. Rows are taken
 * by deleting them, not by a high-water mark: a transaction that committed late (a lower `seq`
 * than rows already seen) is still found.
 */
const DISPATCH = `with batch as (
    delete from notify_outbox where seq in (select seq from notify_outbox order by seq limit $1) returning *
  ), matches as (
    select s.id as subscription_id, b.recorded, b.resource_type, b.resource_id, b.version, b.change,
           row_number() over (partition by s.id order by b.seq) as rn
      from batch b join subscription s on s.status <> 'off' and b.recorded >= s.created
       and (s.filter_type is null or s.filter_type = b.resource_type)
       and (s.filter_patient is null or s.filter_patient = b.patient_nhs)
       and (s.filter_custodian is null or s.filter_custodian = b.custodian_ods)
  ), counts as (
    select subscription_id, count(*) as n from matches group by subscription_id
  ), bumped as (
    update subscription s set events_since_start = s.events_since_start + c.n
      from counts c where s.id = c.subscription_id
    returning s.id, s.events_since_start - c.n as base
  ), inserted as (
    insert into notify_event (subscription_id, event_number, recorded, resource_type, resource_id, version, change)
    select m.subscription_id, b.base + m.rn, m.recorded, m.resource_type, m.resource_id, m.version, m.change
      from matches m join bumped b on b.id = m.subscription_id
    returning 1
  )
  select (select count(*) from batch)::int as taken, (select count(*) from inserted)::int as events`;

export const DISPATCH_LOCK = 4242007;

/** Dispatches up to `batch` outbox rows; returns how many were taken and how many events they made. */
export async function dispatchOutbox(db: Database, batch: number): Promise<{ taken: number; events: number }> {
  return db.transaction(async (tx) => {
    await tx.query(`select pg_advisory_xact_lock(${DISPATCH_LOCK})`);
    const r = await tx.query<{ taken: number; events: number }>(DISPATCH, [batch]);
    return r.rows[0] ?? { taken: 0, events: 0 };
  });
}
