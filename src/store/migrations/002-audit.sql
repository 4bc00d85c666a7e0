-- The audit trail: one FHIR AuditEvent per interaction, append-only and hash-chained.
-- Events are spread over several independent chains so that concurrent requests do not queue on
-- one lock; each chain's head row is locked only for the inserting statement (or transaction).
create table audit_event (
  seq bigserial primary key,
  id text not null unique,
  recorded timestamptz not null,
  chain integer not null,
  chain_pos bigint not null,
  hash bytea not null,
  patients text[] not null,
  agent_ods text,
  agent_user text,
  action text not null,
  subtype text not null,
  outcome text not null,
  purpose text,
  break_glass boolean not null,
  resource text not null
);
create unique index audit_event_chain_pos on audit_event (chain, chain_pos);
create index audit_event_recorded on audit_event (recorded desc, seq desc);
create index audit_event_patients on audit_event using gin (patients);
create index audit_event_agent_user on audit_event (agent_user, recorded desc);
create index audit_event_agent_ods on audit_event (agent_ods, recorded desc);

create table audit_chain (
  chain integer primary key,
  pos bigint not null,
  head bytea not null
);
insert into audit_chain (chain, pos, head)
  select g, 0, sha256(convert_to('locus-audit-genesis:' || g, 'UTF8')) from generate_series(0, 15) g;

create function audit_event_append_only() returns trigger language plpgsql as $$
begin
  raise exception 'audit_event is append-only' using errcode = 'P0001';
end;
$$;
create trigger audit_event_no_update before update or delete on audit_event
  for each row execute function audit_event_append_only();
create trigger audit_event_no_truncate before truncate on audit_event
  for each statement execute function audit_event_append_only();
