-- Custody projections, version 1. Everything here is derived from the log and can be thrown
-- away and rebuilt from it (custody rebuild). Times are nanoseconds since the Unix epoch.
-- Every row records the seq of the event that last changed it.

-- The seq each projection has applied, written in the same transaction as its rows, so that a
-- projection resumes exactly where it stopped after any crash.
CREATE TABLE projection_checkpoint (
    name        TEXT PRIMARY KEY,
    applied_seq INTEGER NOT NULL,
    applied_at  INTEGER NOT NULL     -- ingested_at of the event at applied_seq
) STRICT;

CREATE TABLE tasks (
    uuid        TEXT PRIMARY KEY,
    order_id    TEXT NOT NULL,
    status      TEXT NOT NULL,       -- pending, in_progress, blocked, complete, failed, cancelled
    payload     TEXT NOT NULL,       -- JSON object
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    created_seq INTEGER NOT NULL,
    last_seq    INTEGER NOT NULL
) STRICT;
CREATE INDEX tasks_by_order ON tasks (order_id, status);
CREATE INDEX tasks_by_status ON tasks (status, updated_at);

CREATE TABLE followups (
    id         TEXT PRIMARY KEY,
    order_id   TEXT NOT NULL,
    type       TEXT NOT NULL,
    note       TEXT NOT NULL,
    impact     TEXT NOT NULL,        -- low, medium, high, critical
    created_at INTEGER NOT NULL,
    seq        INTEGER NOT NULL
) STRICT;
CREATE INDEX followups_by_order ON followups (order_id, seq);

-- One row per span. `details` stays in the log: fetch it by seq.
CREATE TABLE operation_logs (
    seq            INTEGER PRIMARY KEY,
    trace_id       TEXT NOT NULL,
    span_id        TEXT,
    parent_span_id TEXT,
    source         TEXT NOT NULL,
    stage          TEXT NOT NULL,
    operation      TEXT NOT NULL,
    task_uuid      TEXT,
    duration_ms    REAL,
    timestamp      INTEGER NOT NULL,
    ingested_at    INTEGER NOT NULL,
    is_error       INTEGER NOT NULL  -- stage error/replay_error, or details.error present
) STRICT;
CREATE INDEX operation_logs_by_trace ON operation_logs (trace_id, timestamp, seq);
CREATE INDEX operation_logs_by_task ON operation_logs (task_uuid) WHERE task_uuid IS NOT NULL;

CREATE TABLE error_events (
    error_id   TEXT PRIMARY KEY,
    source     TEXT NOT NULL,
    message    TEXT NOT NULL,
    order_id   TEXT,
    task_uuid  TEXT,
    error_type TEXT,
    payload    TEXT,                 -- JSON object
    created_at INTEGER NOT NULL,
    seq        INTEGER NOT NULL
) STRICT;
CREATE INDEX error_events_by_order ON error_events (order_id) WHERE order_id IS NOT NULL;
CREATE INDEX error_events_by_task ON error_events (task_uuid) WHERE task_uuid IS NOT NULL;

CREATE TABLE delivery_reports (
    order_id     TEXT NOT NULL,
    revision     INTEGER NOT NULL,
    report       TEXT NOT NULL,      -- JSON object
    finalized_at INTEGER NOT NULL,
    seq          INTEGER NOT NULL,
    PRIMARY KEY (order_id, revision)
) STRICT;

CREATE TABLE github_operations (
    id           TEXT PRIMARY KEY,
    kind         TEXT NOT NULL,      -- upsert_file, open_pr, create_issue
    status       TEXT NOT NULL,      -- pending, succeeded, failed
    params       TEXT NOT NULL,      -- JSON object, never a secret
    attempts     INTEGER NOT NULL,
    result       TEXT,               -- JSON object
    error        TEXT,               -- JSON object
    requested_at INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    last_seq     INTEGER NOT NULL
) STRICT;
CREATE INDEX github_operations_by_status ON github_operations (status, requested_at);

CREATE TABLE replays (
    new_trace    TEXT PRIMARY KEY,
    from_trace   TEXT NOT NULL,
    mode         TEXT NOT NULL,      -- dry-run, live
    speed        REAL NOT NULL,
    spans        INTEGER NOT NULL,
    status       TEXT NOT NULL,      -- running, then the completion status
    started_at   INTEGER NOT NULL,
    completed_at INTEGER,
    last_seq     INTEGER NOT NULL
) STRICT;
CREATE INDEX replays_by_start ON replays (started_at);

-- One row per trace, kept up to date as spans arrive.
CREATE TABLE trace_summaries (
    trace_id       TEXT PRIMARY KEY,
    root_operation TEXT NOT NULL,    -- the operation of the earliest span
    start          INTEGER NOT NULL, -- earliest span timestamp
    "end"          INTEGER NOT NULL, -- latest span timestamp + duration
    span_count     INTEGER NOT NULL,
    error_count    INTEGER NOT NULL,
    sources        TEXT NOT NULL,    -- JSON array of the sources, in order of appearance
    replay_of      TEXT,             -- the trace this one replays
    last_seq       INTEGER NOT NULL
) STRICT;
CREATE INDEX trace_summaries_by_start ON trace_summaries (start);
CREATE INDEX trace_summaries_with_errors ON trace_summaries (start) WHERE error_count > 0;
