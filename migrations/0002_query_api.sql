-- Read models for the REST API: sealed chain entries ("jobs"), dashboard users, and the
-- GDPR erasure marks on tenants.

-- One row per entry of a zone's integrity log (docs/FORMAT.md §4), projected from rl.chain.<zone>.
-- Columns that do not apply to an entry's kind are NULL. Hashes are raw 32-byte values.
CREATE TABLE jobs (
    zone_id            TEXT NOT NULL,
    leaf_index         BIGINT NOT NULL,
    tenant_id          TEXT NOT NULL,
    -- SHA-256 of the entry bytes (the entry id), hex: globally unique and checkable by a client.
    job_id             TEXT NOT NULL UNIQUE,
    kind               TEXT NOT NULL,
    dataset            TEXT,
    window_start_ns    BIGINT,
    window_end_ns      BIGINT,
    method             TEXT,
    sampling           BIGINT,
    object_key         TEXT,
    object_version     TEXT,
    stored_size        BIGINT,
    stored_sha256      BYTEA,
    content_sha256     BYTEA,
    record_count       BIGINT,
    retain_until_ns    BIGINT,
    gap_reason         TEXT,
    prune_target_index BIGINT,
    pruned_at_ns       BIGINT,
    prev_chain_hash    BYTEA NOT NULL,
    chain_hash         BYTEA NOT NULL,
    leaf_hash          BYTEA NOT NULL,
    entry_bytes        BYTEA NOT NULL,
    sealed_at_ns       BIGINT NOT NULL,
    stream_sequence    BIGINT NOT NULL,
    -- Set on an archive entry when a later prune entry logs the deletion of its object.
    pruned_by_index    BIGINT,
    PRIMARY KEY (zone_id, leaf_index)
);
CREATE INDEX jobs_by_tenant ON jobs (tenant_id, sealed_at_ns DESC, zone_id, leaf_index);
CREATE INDEX jobs_by_zone_window ON jobs (zone_id, window_end_ns DESC);

-- Dashboard users. There is no ctl.user_* event yet, so this table is written by the API directly
-- and is not rebuilt by replay (see the query-api README note).
CREATE TABLE users (
    user_id       TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL,
    email         TEXT NOT NULL,
    role          TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    deleted_at    TIMESTAMPTZ
);
CREATE UNIQUE INDEX users_email_live ON users (lower(email)) WHERE deleted_at IS NULL;
CREATE INDEX users_by_tenant ON users (tenant_id);

-- Registration must refuse an email that is already a live customer's, in any tenant.
CREATE INDEX tenants_by_email ON tenants (lower(email)) WHERE deleted_at IS NULL;
