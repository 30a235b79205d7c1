-- What retention deleted (log.retention events) and the traces it took spans of; PostgreSQL
-- variant. `retired_traces.trace_key` is the 64-bit FNV-1a hash of the trace id, as in SQLite.
CREATE TABLE log_retentions (
    seq         bigint PRIMARY KEY,
    first_seq   bigint NOT NULL,
    last_seq    bigint NOT NULL,
    chain       text NOT NULL,
    snapshot    text NOT NULL,
    bytes       bigint NOT NULL,
    recorded_at bigint NOT NULL
);

CREATE TABLE retired_traces (
    trace_key   bigint PRIMARY KEY,
    through_seq bigint NOT NULL
);
