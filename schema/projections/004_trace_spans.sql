-- Spans found by trace through one row per trace per applied batch instead of one index entry
-- per span, and keyed by a number given to each trace in order of first appearance instead of by
-- its id (docs/benchmarks.md, P2). An index entry per span, keyed by a random trace id, was the
-- largest cost of the live projector: a random insert each, and a page written per span. Now
-- every table the projector writes per batch is appended to in order; the one B-tree keyed by
-- trace (trace_keys) is written in bulk.

-- trace_summaries gains `id`: the trace's number, given in order of first appearance (the seq of
-- its first span), so a rebuild gives every trace the same number; and `trace_key`, which it is
-- found by: custody_trace_key(trace_id), the 64-bit FNV-1a hash of the id's UTF-8 bytes (offset
-- basis 0xcbf29ce484222325, prime 0x100000001b3) as a signed integer. Keys may collide: lookups
-- compare trace_id too.
CREATE TABLE trace_summaries_numbered (
    id             INTEGER PRIMARY KEY,
    trace_key      INTEGER NOT NULL,
    trace_id       TEXT NOT NULL,
    root_operation TEXT NOT NULL,    -- the operation of the earliest span
    start          INTEGER NOT NULL, -- earliest span timestamp
    "end"          INTEGER NOT NULL, -- latest span timestamp + duration
    span_count     INTEGER NOT NULL,
    error_count    INTEGER NOT NULL,
    sources        TEXT NOT NULL,    -- JSON array of the sources, in order of appearance
    replay_of      TEXT,             -- the trace this one replays
    last_seq       INTEGER NOT NULL
) STRICT;
INSERT INTO trace_summaries_numbered (trace_key, trace_id, root_operation, start, "end", span_count, error_count, sources, replay_of, last_seq)
    SELECT custody_trace_key(trace_id), trace_id, root_operation, start, "end", span_count, error_count, sources, replay_of, last_seq FROM trace_summaries t
    ORDER BY (SELECT MIN(o.seq) FROM operation_logs o WHERE o.trace_id = t.trace_id);
DROP TABLE trace_summaries;
ALTER TABLE trace_summaries_numbered RENAME TO trace_summaries;
CREATE INDEX trace_summaries_by_start ON trace_summaries (start);
CREATE INDEX trace_summaries_with_errors ON trace_summaries (start) WHERE error_count > 0;

-- Traces by key: (trace_key, id) for every trace numbered up to trace_keys_indexed.through_id.
-- Written in bulk, sorted, once that many traces have been numbered since the last time (the
-- projector knows the later ones in memory, from trace_summaries), rather than one random insert
-- per new trace in every batch: with an index on trace_summaries (trace_key), each batch's new
-- traces dirtied as many index pages as there were traces, and the projector slowed down as the
-- index grew (docs/benchmarks.md, P2).
CREATE TABLE trace_keys (
    trace_key INTEGER NOT NULL,
    id        INTEGER NOT NULL,
    PRIMARY KEY (trace_key, id)
) STRICT, WITHOUT ROWID;
CREATE TABLE trace_keys_indexed (
    through_id INTEGER NOT NULL       -- one row: every trace with id <= through_id is in trace_keys
) STRICT;
INSERT INTO trace_keys (trace_key, id) SELECT trace_key, id FROM trace_summaries ORDER BY trace_key, id;
INSERT INTO trace_keys_indexed (through_id) SELECT COALESCE(MAX(id), 0) FROM trace_summaries;

-- The spans of each trace, one row per trace per applied batch. The rows depend on the batch
-- boundaries; what they say — which spans belong to which trace — does not.
--   trace      trace_summaries.id
--   first_seq  the trace's first seq in the batch
--   seqs       the seqs of the trace's spans in the batch: a JSON array, ascending
CREATE TABLE trace_spans (
    trace     INTEGER NOT NULL,
    first_seq INTEGER NOT NULL,
    seqs      TEXT NOT NULL,
    PRIMARY KEY (trace, first_seq)
) STRICT, WITHOUT ROWID;
INSERT INTO trace_spans (trace, first_seq, seqs)
    SELECT s.id, MIN(o.seq), json_group_array(o.seq) FROM (SELECT trace_id, seq FROM operation_logs ORDER BY seq) o
    JOIN trace_summaries s ON s.trace_id = o.trace_id
    GROUP BY s.id;
-- operation_logs gains `trace`: the number of the span's trace, so that the spans found by a
-- scan of a seq range (value_batches, below) give their traces' rows directly.
ALTER TABLE operation_logs ADD COLUMN trace INTEGER NOT NULL DEFAULT 0;
CREATE INDEX trace_summaries_by_trace_id_while_migrating ON trace_summaries (trace_id);
UPDATE operation_logs SET trace = (SELECT s.id FROM trace_summaries s WHERE s.trace_id = operation_logs.trace_id);
DROP INDEX trace_summaries_by_trace_id_while_migrating;

-- Where each source, operation and stage occurs: one row per value per applied batch, with the
-- seq range of the batch's spans. A search for a value that occurs in few batches scans only
-- those ranges of operation_logs (a block-range index); for a common value, scanning traces
-- newest first finds matches at once.
--   kind       source, operation or stage
CREATE TABLE value_batches (
    kind      TEXT NOT NULL,
    value     TEXT NOT NULL,
    first_seq INTEGER NOT NULL,
    last_seq  INTEGER NOT NULL,
    PRIMARY KEY (kind, value, first_seq)
) STRICT, WITHOUT ROWID;
INSERT INTO value_batches (kind, value, first_seq, last_seq)
    SELECT 'source', source, MIN(seq), MAX(seq) FROM operation_logs GROUP BY source, seq / 8192;
INSERT INTO value_batches (kind, value, first_seq, last_seq)
    SELECT 'operation', operation, MIN(seq), MAX(seq) FROM operation_logs GROUP BY operation, seq / 8192;
INSERT INTO value_batches (kind, value, first_seq, last_seq)
    SELECT 'stage', stage, MIN(seq), MAX(seq) FROM operation_logs GROUP BY stage, seq / 8192;
DROP INDEX operation_logs_by_trace;
-- Traces by source, operation and stage are found from trace_summaries (newest first) with the
-- trace's own spans (through trace_spans): the per-span indexes on source and operation cost a
-- quarter of the projector's throughput, and the query planner, without statistics, used them
-- to scan every span of a source for each trace.
DROP INDEX operation_logs_by_source;
DROP INDEX operation_logs_by_operation;
