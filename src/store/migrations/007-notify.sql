-- Notifications to shared care records (IHE DSUBm on the FHIR R4 Subscriptions Backport).

-- Topic-based Subscriptions (R4 backport profile); runtime delivery state lives beside the resource.
create table subscription (
  id text primary key,
  version integer not null,
  owner_ods text not null,
  status text not null,                 -- requested | active | error | off
  topic text not null,
  filter_type text,                     -- ImagingStudy | DocumentReference | null for both
  filter_patient text,
  filter_custodian text,
  endpoint text not null,
  headers text[] not null,
  payload text not null,                -- id-only | full-resource
  heartbeat_seconds integer,
  created timestamptz not null,
  last_updated timestamptz not null,
  events_since_start bigint not null default 0,
  last_delivered bigint not null default 0,
  failures integer not null default 0,
  next_attempt_at timestamptz not null,
  last_sent_at timestamptz,
  lease_until timestamptz,
  error text,
  resource text not null
);
create index subscription_owner on subscription (owner_ods);
create index subscription_due on subscription (next_attempt_at) where status in ('requested', 'active');

-- Transactional outbox: one row per pointer version, written in the pointer's own transaction.
create table notify_outbox (
  seq bigserial primary key,
  recorded timestamptz not null default now(),
  resource_type text not null,
  resource_id text not null,
  version integer not null,
  change text not null,                 -- create | update | supersede | delete
  patient_nhs text,
  custodian_ods text
);

-- Events per subscription, numbered without gaps from 1 (events-since-subscription-start).
create table notify_event (
  subscription_id text not null references subscription (id) on delete cascade,
  event_number bigint not null,
  recorded timestamptz not null,
  resource_type text not null,
  resource_id text not null,
  version integer not null,
  change text not null,
  primary key (subscription_id, event_number)
);
