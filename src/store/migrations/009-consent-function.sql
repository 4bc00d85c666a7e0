-- Whether a patient's active Consent deny rules withhold a pointer of this category from this
-- organisation now (rule 4 of the sharing policy; access/network-policy.ts calls it). As a
-- PL/pgSQL function its query is planned once per connection and cached, and the search that
-- calls it keeps a small plan: inlined, the rule tests (a lateral function scan over the rules)
-- made every patient search costlier to plan and to start than to run.
create function consent_denies(p_patient text, p_org text, p_category text, p_now timestamptz) returns boolean
language plpgsql stable as $$
begin
  return exists (
    select 1 from consent c cross join lateral jsonb_array_elements(c.rules) r
     where c.patient_nhs = p_patient and c.status = 'active'
       and (r->>'start' is null or (r->>'start')::timestamptz <= p_now)
       and (r->>'end' is null or (r->>'end')::timestamptz > p_now)
       and (jsonb_array_length(r->'orgs') = 0 or r->'orgs' ? p_org)
       and (jsonb_array_length(r->'categories') = 0 or r->'categories' ? p_category));
end
$$;
