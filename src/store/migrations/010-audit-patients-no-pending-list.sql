-- The audit trail's patient index without GIN's pending list. With fastupdate on, new entries
-- collect in a pending list, and the insert that finds it over gin_pending_list_limit (4 MB) merges
-- it into the index itself: that one audit statement then takes hundreds of milliseconds, and
-- every read waiting to make its AuditEvent durable waits with it (seen as ~1 s stalls under
-- load). PostgreSQL's GIN tips (https://www.postgresql.org/docs/current/gin.html#GIN-TIPS): "If
-- consistent response time is more important than update speed, use of pending entries can be
-- disabled by turning off the fastupdate storage parameter."
alter index audit_event_patients set (fastupdate = off);
