-- Each service reads only the tables its own projections write (docs/ARCHITECTURE.md). The
-- query-api lists legal holds from its own projection of them; `legal_holds` is the reaper's,
-- and keeps only what deletion needs (which archives are held), not the tenant's reason text.
CREATE TABLE api_legal_holds (
    hold_id   text   PRIMARY KEY,
    tenant    text   NOT NULL,
    -- NULL: every zone of the tenant.
    zone      text,
    reason    text   NOT NULL,
    set_at_ns bigint NOT NULL
);
CREATE INDEX api_legal_holds_tenant ON api_legal_holds (tenant);

-- The API's projection fills api_legal_holds from the control stream; the reaper's rows need
-- no reason.
UPDATE legal_holds SET reason = '';
