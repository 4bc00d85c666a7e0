-- Locus registry core: organisations, endpoints, imaging pointers, their versions.
-- Search parameters live in typed columns filled at write time; `resource` is the verbatim JSON
-- text served back (spliced into Bundles, never re-serialised). `patient_nhs` leads every
-- clinician index: it is the distribution key when the registry is sharded by patient.

create table organization (
  id text primary key,
  version integer not null,
  last_updated timestamptz not null,
  ods text not null,
  name_lower text not null,
  kind text not null,
  active boolean not null,
  identifiers text[] not null,
  resource text not null
);
create unique index organization_ods on organization (ods);

create table endpoint (
  id text primary key,
  version integer not null,
  last_updated timestamptz not null,
  managing_org_id text not null,
  managing_ods text not null,
  connection_type text not null,
  status text not null,
  name_lower text not null,
  identifiers text[] not null,
  address text not null,
  resource text not null
);
create index endpoint_managing_ods on endpoint (managing_ods);
create index endpoint_managing_org on endpoint (managing_org_id);

create table imaging_study (
  id text primary key,
  version integer not null,
  last_updated timestamptz not null,
  patient_nhs text not null,
  custodian_ods text not null,
  study_uid text not null,
  identifiers text[] not null,
  modalities text[] not null,
  started timestamptz not null,
  started_end timestamptz not null,
  status text not null,
  endpoint_ids text[] not null,
  security text[] not null,
  resource text not null,
  constraint imaging_study_custodian_study unique (custodian_ods, study_uid)
);
create index imaging_study_patient_started on imaging_study (patient_nhs, started desc, id desc);
create index imaging_study_identifiers on imaging_study using gin (identifiers);

create table document_reference (
  id text primary key,
  version integer not null,
  last_updated timestamptz not null,
  patient_nhs text not null,
  custodian_ods text not null,
  master_identifier text not null,
  identifiers text[] not null,
  types text[] not null,
  categories text[] not null,
  settings text[] not null,
  date timestamptz not null,
  period_start timestamptz,
  period_end timestamptz,
  status text not null,
  related text[] not null,
  modalities text[] not null,
  security text[] not null,
  resource text not null
);
create index document_reference_patient_date on document_reference (patient_nhs, date desc, id desc);
create index document_reference_identifiers on document_reference using gin (identifiers);
create index document_reference_related on document_reference using gin (related);
-- NRL: one current pointer per custodian and master identifier (DUPLICATE_REJECTED otherwise);
-- superseded pointers keep theirs.
create unique index document_reference_current_master
  on document_reference (custodian_ods, master_identifier) where status = 'current';

-- Every version of every resource, for vread and _history. A delete is a version with no body.
-- The pointer's patient, custodian, categories and labels are kept so that the same access policy
-- applies to old versions as to current ones.
create table resource_version (
  resource_type text not null,
  id text not null,
  version integer not null,
  last_updated timestamptz not null,
  deleted boolean not null,
  patient_nhs text,
  custodian_ods text,
  categories text[] not null,
  security text[] not null,
  resource text,
  primary key (resource_type, id, version)
);
