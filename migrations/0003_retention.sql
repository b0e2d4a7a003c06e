-- Retention-reaper read models, built from RL_CHAIN and RL_CONTROL.

-- Every archive entry of every zone's log with its retain-until (fixed when it was sealed).
CREATE TABLE retention_archives (
    zone            text   NOT NULL,
    tenant          text   NOT NULL,
    entry_index     bigint NOT NULL,
    -- Canonical entry bytes: sent back in `archive.pruned` so the sealer can check its target.
    entry           bytea  NOT NULL,
    object_key      text   NOT NULL,
    stored_size     bigint NOT NULL,
    retain_until_ns bigint NOT NULL,
    -- Set when the `prune` entry for this archive is in the log.
    pruned_at_ns    bigint,
    -- Set when the object is gone from the store (after the prune entry).
    deleted_at_ns   bigint,
    -- The provider refused the delete (Object Lock): an alarm for an operator, never retried.
    refused         text,
    PRIMARY KEY (zone, entry_index)
);
CREATE INDEX retention_archives_due ON retention_archives (retain_until_ns)
    WHERE pruned_at_ns IS NULL;
CREATE INDEX retention_archives_undeleted ON retention_archives (zone, entry_index)
    WHERE pruned_at_ns IS NOT NULL AND deleted_at_ns IS NULL AND refused IS NULL;

CREATE TABLE legal_holds (
    hold_id  text   PRIMARY KEY,
    tenant   text   NOT NULL,
    -- NULL: every zone of the tenant.
    zone     text,
    reason   text   NOT NULL,
    set_at_ns bigint NOT NULL
);
CREATE INDEX legal_holds_tenant ON legal_holds (tenant);
