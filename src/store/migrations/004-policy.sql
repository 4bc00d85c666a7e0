-- Sharing policy data: patients' Consent resources (their deny rules extracted at write time)
-- and sharing agreements with organisations outside the network.
create table consent (
  id text primary key,
  version integer not null,
  last_updated timestamptz not null,
  patient_nhs text not null,
  custodian_ods text,
  status text not null,
  -- [{ "orgs": ["RXK"], "categories": ["721981007"], "start": iso|null, "end": iso|null }]
  rules jsonb not null,
  resource text not null
);
create index consent_patient on consent (patient_nhs) where status = 'active';

-- One row per direction: `provider_ods` shares its pointers with `recipient_ods`.
create table sharing_agreement (
  id text primary key,
  provider_ods text not null,
  recipient_ods text not null,
  categories text[] not null,
  period_start timestamptz not null,
  period_end timestamptz,
  description text not null
);
create index sharing_agreement_recipient on sharing_agreement (recipient_ods, provider_ods);
