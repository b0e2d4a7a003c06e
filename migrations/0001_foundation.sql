-- Projections: read models rebuilt from JetStream. Each projection stores the last stream
-- sequence it applied in the same transaction as its change (exactly-once effect).

CREATE TABLE projection_offsets (
    projection      TEXT PRIMARY KEY,
    stream_sequence BIGINT NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE tenants (
    tenant_id      TEXT PRIMARY KEY,
    name           TEXT NOT NULL,
    email          TEXT NOT NULL,
    retention_days INTEGER NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL,
    deleted_at     TIMESTAMPTZ
);

CREATE TABLE zones (
    zone_id        TEXT PRIMARY KEY,
    tenant_id      TEXT NOT NULL,
    name           TEXT NOT NULL,
    plan           TEXT NOT NULL,
    method         TEXT NOT NULL,
    fields         TEXT NOT NULL,
    paused         BOOLEAN NOT NULL DEFAULT FALSE,
    sealed_token   BYTEA NOT NULL,
    token_key_id   TEXT NOT NULL,
    health_status  TEXT,
    health_reason  TEXT,
    added_at       TIMESTAMPTZ NOT NULL,
    removed_at     TIMESTAMPTZ
);
CREATE INDEX zones_by_tenant ON zones (tenant_id);

CREATE TABLE api_keys (
    key_id      TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL,
    name        TEXT NOT NULL,
    role        TEXT NOT NULL,
    digest      BYTEA NOT NULL,
    expires_at  TIMESTAMPTZ,
    created_at  TIMESTAMPTZ NOT NULL,
    revoked_at  TIMESTAMPTZ
);
CREATE INDEX api_keys_by_tenant ON api_keys (tenant_id);

CREATE TABLE audit_log (
    stream_sequence BIGINT PRIMARY KEY,
    event_id        UUID NOT NULL UNIQUE,
    tenant_id       TEXT NOT NULL,
    occurred_at     TIMESTAMPTZ NOT NULL,
    actor           TEXT NOT NULL,
    action          TEXT NOT NULL,
    target          TEXT NOT NULL,
    outcome         TEXT NOT NULL,
    client_ip       TEXT,
    request_id      TEXT,
    detail          TEXT
);
CREATE INDEX audit_log_by_tenant ON audit_log (tenant_id, occurred_at);
