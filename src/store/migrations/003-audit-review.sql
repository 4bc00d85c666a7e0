-- Audit review (issue 3). Break-glass accesses are rare and the first thing an IG lead looks
-- for: a partial index keeps "break-glass only" a short range scan in review order however large
-- the trail grows. Patient, user and organisation filters use the indexes of 002-audit.sql.
create index audit_event_break_glass on audit_event (recorded desc, seq desc) where break_glass;
