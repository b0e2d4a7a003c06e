-- Events a projection can never apply, set aside so that one bad event does not stop the read
-- model: PostgreSQL refused the event itself (SQLSTATE class 22, 23 or 54), or its bytes do not
-- decode. The projection's offset is already past each one; `rainlogs projections poisoned`
-- lists them and `--retry` re-applies them once their cause is fixed. A rebuild empties a
-- projection's rows here with its tables, and finds its poisoned events again while replaying.
CREATE TABLE projection_poisoned (
    projection      TEXT        NOT NULL,
    stream          TEXT        NOT NULL,
    stream_sequence BIGINT      NOT NULL,
    -- NULL when it was not known (an event fetched without its subject).
    subject         TEXT,
    -- The refusal's SQLSTATE; NULL for an event that does not decode.
    sqlstate        TEXT,
    -- Why, as PostgreSQL or the decoder said it (truncated); never the event's payload.
    error           TEXT        NOT NULL,
    first_seen      TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (projection, stream_sequence)
);
