-- A `shortfall` entry (docs/FORMAT.md, kind 8) carries the records Cloudflare counted for a
-- window that the archive holds fewer of; the jobs read model shows it beside record_count,
-- which stays the count of records RainLogs holds.
ALTER TABLE jobs ADD COLUMN source_count bigint;
