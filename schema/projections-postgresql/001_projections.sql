-- Custody projections on PostgreSQL, version 1: the PostgreSQL variant of
-- schema/projections/001_projections.sql (docs/projections.md describes every column). Same
-- tables and columns; SQLite's INTEGER is bigint, REAL double precision, and every text column
-- compares bytewise (COLLATE "C"), as SQLite's do, so both stores order rows alike. Times are
-- nanoseconds since the Unix epoch.

CREATE TABLE projection_checkpoint (
    name        text COLLATE "C" PRIMARY KEY,
    applied_seq bigint NOT NULL,
    applied_at  bigint NOT NULL
);

CREATE TABLE tasks (
    uuid        text COLLATE "C" PRIMARY KEY,
    order_id    text COLLATE "C" NOT NULL,
    status      text COLLATE "C" NOT NULL,
    payload     text NOT NULL,
    created_at  bigint NOT NULL,
    updated_at  bigint NOT NULL,
    created_seq bigint NOT NULL,
    last_seq    bigint NOT NULL
);
CREATE INDEX tasks_by_order ON tasks (order_id, status);
CREATE INDEX tasks_by_status ON tasks (status, updated_at);
CREATE INDEX tasks_by_creation ON tasks (created_seq);

CREATE TABLE followups (
    id         text COLLATE "C" PRIMARY KEY,
    order_id   text COLLATE "C" NOT NULL,
    type       text NOT NULL,
    note       text NOT NULL,
    impact     text NOT NULL,
    created_at bigint NOT NULL,
    seq        bigint NOT NULL
);
CREATE INDEX followups_by_order ON followups (order_id, seq);

CREATE TABLE operation_logs (
    seq            bigint PRIMARY KEY,
    trace_id       text COLLATE "C" NOT NULL,
    span_id        text,
    parent_span_id text,
    source         text COLLATE "C" NOT NULL,
    stage          text COLLATE "C" NOT NULL,
    operation      text COLLATE "C" NOT NULL,
    task_uuid      text COLLATE "C",
    duration_ms    double precision,
    timestamp      bigint NOT NULL,
    ingested_at    bigint NOT NULL,
    is_error       bigint NOT NULL
);
CREATE INDEX operation_logs_by_task ON operation_logs (task_uuid) WHERE task_uuid IS NOT NULL;

CREATE TABLE error_events (
    error_id   text COLLATE "C" PRIMARY KEY,
    source     text NOT NULL,
    message    text NOT NULL,
    order_id   text COLLATE "C",
    task_uuid  text COLLATE "C",
    error_type text,
    payload    text,
    created_at bigint NOT NULL,
    seq        bigint NOT NULL
);
CREATE INDEX error_events_by_order ON error_events (order_id) WHERE order_id IS NOT NULL;
CREATE INDEX error_events_by_task ON error_events (task_uuid) WHERE task_uuid IS NOT NULL;

CREATE TABLE delivery_reports (
    order_id     text COLLATE "C" NOT NULL,
    revision     bigint NOT NULL,
    report       text NOT NULL,
    finalized_at bigint NOT NULL,
    seq          bigint NOT NULL,
    PRIMARY KEY (order_id, revision)
);

CREATE TABLE github_operations (
    id           text COLLATE "C" PRIMARY KEY,
    kind         text NOT NULL,
    status       text COLLATE "C" NOT NULL,
    params       text NOT NULL,
    attempts     bigint NOT NULL,
    result       text,
    error        text,
    requested_at bigint NOT NULL,
    updated_at   bigint NOT NULL,
    last_seq     bigint NOT NULL
);
CREATE INDEX github_operations_by_status ON github_operations (status, requested_at);

CREATE TABLE replays (
    new_trace    text COLLATE "C" PRIMARY KEY,
    from_trace   text COLLATE "C" NOT NULL,
    mode         text NOT NULL,
    speed        double precision NOT NULL,
    spans        bigint NOT NULL,
    status       text COLLATE "C" NOT NULL,
    started_at   bigint NOT NULL,
    completed_at bigint,
    last_seq     bigint NOT NULL
);
CREATE INDEX replays_by_start ON replays (started_at);

CREATE TABLE trace_summaries (
    trace_id       text COLLATE "C" PRIMARY KEY,
    root_operation text COLLATE "C" NOT NULL,
    start          bigint NOT NULL,
    "end"          bigint NOT NULL,
    span_count     bigint NOT NULL,
    error_count    bigint NOT NULL,
    sources        text COLLATE "C" NOT NULL,
    replay_of      text COLLATE "C",
    last_seq       bigint NOT NULL
);
CREATE INDEX trace_summaries_by_start ON trace_summaries (start, trace_id);
CREATE INDEX trace_summaries_with_errors ON trace_summaries (start, trace_id) WHERE error_count > 0;
