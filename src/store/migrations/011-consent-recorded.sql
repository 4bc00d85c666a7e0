-- Rule 4 of the sharing policy without a consent probe in every search. Each pointer row, current
-- or past version, says whether a Consent is on record for its patient (`consent_recorded`); the
-- policy probes the consent table only for rows that say so (access/network-policy.ts). Most
-- patients have no Consent, and their searches no longer open the consent table and its index:
-- that probe was most of what the policy cost a search.
--
-- The database keeps the flag true, whichever writer writes:
-- - a pointer row written (insert, or update of its patient) takes the flag from the patient's
--   active consents at that moment;
-- - a Consent written active sets the flag on every row of its patient.
-- Once set, a flag stays set (a withdrawn Consent leaves a probe that finds nothing). Concurrent
-- writers are ordered by the write engine's advisory lock (registry/write-engine.ts): pointer
-- writes hold it shared, Consent writes exclusive, so a pointer committed while a Consent is being
-- recorded is either seen by the Consent's update or sees the Consent itself.
alter table imaging_study add column consent_recorded boolean not null default false;
alter table document_reference add column consent_recorded boolean not null default false;
alter table resource_version add column consent_recorded boolean not null default false;
-- The Consent trigger finds every version of a patient's pointers (also the index a subject access
-- request or an erasure would use).
create index resource_version_patient on resource_version (patient_nhs) where patient_nhs is not null;

update imaging_study set consent_recorded = true where patient_nhs in (select patient_nhs from consent where status = 'active');
update document_reference set consent_recorded = true where patient_nhs in (select patient_nhs from consent where status = 'active');
update resource_version set consent_recorded = true where patient_nhs in (select patient_nhs from consent where status = 'active');

create function pointer_consent_recorded() returns trigger
language plpgsql as $$
begin
  new.consent_recorded := new.patient_nhs is not null
    and exists (select 1 from consent c where c.patient_nhs = new.patient_nhs and c.status = 'active');
  return new;
end
$$;
create trigger imaging_study_consent_recorded before insert or update of patient_nhs on imaging_study
  for each row execute function pointer_consent_recorded();
create trigger document_reference_consent_recorded before insert or update of patient_nhs on document_reference
  for each row execute function pointer_consent_recorded();
create trigger resource_version_consent_recorded before insert or update of patient_nhs on resource_version
  for each row execute function pointer_consent_recorded();

create function consent_marks_pointers() returns trigger
language plpgsql as $$
begin
  if new.status = 'active' then
    update imaging_study set consent_recorded = true where patient_nhs = new.patient_nhs and not consent_recorded;
    update document_reference set consent_recorded = true where patient_nhs = new.patient_nhs and not consent_recorded;
    update resource_version set consent_recorded = true where patient_nhs = new.patient_nhs and not consent_recorded;
  end if;
  return null;
end
$$;
create trigger consent_marks_pointers after insert or update of patient_nhs, status on consent
  for each row execute function consent_marks_pointers();

-- Whether any of a patient's active consents withholds a pointer of this category from this
-- organisation at this time. A function (plpgsql, never inlined), so that a search's plan holds no
-- reference to the consent table: it is opened only when a row's flag calls for it.
create function consent_denies(p_patient text, p_org text, p_category text, p_now timestamptz) returns boolean
language plpgsql stable as $$
begin
  return exists (select 1 from consent c
                  where c.patient_nhs = p_patient and c.status = 'active'
                    and consent_rules_deny(c.rules, p_org, p_category, p_now));
end
$$;
