-- Whether one Consent's deny rules (consent.rules) withhold a pointer of this category from this
-- organisation at this time: rule 4 of the sharing policy, for access/network-policy.ts. The
-- search probes the consent index itself and calls this only for the consents it finds (few
-- patients have any). As a function, the lateral scan over the rules stays out of every search's
-- plan: inlined, it made each patient search costlier to plan and to start than to run.
create function consent_rules_deny(p_rules jsonb, p_org text, p_category text, p_now timestamptz) returns boolean
language sql immutable parallel safe as $$
  select exists (
    select 1 from jsonb_array_elements(p_rules) r
     where (r->>'start' is null or (r->>'start')::timestamptz <= p_now)
       and (r->>'end' is null or (r->>'end')::timestamptz > p_now)
       and (jsonb_array_length(r->'orgs') = 0 or r->'orgs' ? p_org)
       and (jsonb_array_length(r->'categories') = 0 or r->'categories' ? p_category))
$$;
