-- Retention (docs/operations.md, "Retention"). Each `log.retention` event: the seqs retention
-- deleted (first_seq..last_seq), the chain value after last_seq, the snapshot of the state
-- projections as of last_seq, and the bytes deleted.
CREATE TABLE log_retentions (
    seq         INTEGER PRIMARY KEY,
    first_seq   INTEGER NOT NULL,
    last_seq    INTEGER NOT NULL,
    chain       TEXT NOT NULL,
    snapshot    TEXT NOT NULL,
    bytes       INTEGER NOT NULL,
    recorded_at INTEGER NOT NULL
) STRICT;

-- Traces that had spans in a deleted range, by key (custody_trace_key(trace_id), see
-- 004_trace_spans.sql): a fetch of one whose spans are all gone answers 410 beyond_retention
-- rather than 404, and one partly gone says so. through_seq: the last seq retention deleted
-- when the trace was first found there. Kept in the state snapshots, so a rebuild has them.
CREATE TABLE retired_traces (
    trace_key   INTEGER PRIMARY KEY,
    through_seq INTEGER NOT NULL
) STRICT;
