-- A zone's own retention (days after the window ends), set by `ctl.retention_set`; NULL: the
-- tenant's `tenants.retention_days` applies.
ALTER TABLE zones ADD COLUMN retention_days INTEGER;
