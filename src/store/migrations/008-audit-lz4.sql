-- AuditEvent texts run to a few kilobytes, past the point where PostgreSQL compresses a value.
-- pglz on every audited request costs more CPU than the insert itself; lz4 compresses as well
-- for this text at a fraction of the cost. Builds without lz4 (the embedded PGlite) keep pglz.
do $$
begin
  alter table audit_event alter column resource set compression lz4;
exception when feature_not_supported then
  null;
end
$$;
