-- The custody graph (docs/analysis.md, "The custody graph"), kept by the projector: per minute of
-- span time (a span's `timestamp` in whole minutes since the epoch), each source's spans and each
-- hand-off between two sources — a span whose parent span is of another source — counted when the
-- later of the two is applied, in the child's minute. `durations` is a histogram of the spans'
-- (the children's) duration_ms: "index:count" pairs, ascending, space-separated, in logarithmic
-- buckets of eight per doubling from 0.001 ms (bucket 0: under 0.001 ms); spans without a duration
-- are counted but not in it.
CREATE TABLE graph_nodes (
    minute    INTEGER NOT NULL,
    source    TEXT NOT NULL,
    spans     INTEGER NOT NULL,
    errors    INTEGER NOT NULL,
    durations TEXT NOT NULL,
    PRIMARY KEY (minute, source)
) STRICT, WITHOUT ROWID;

CREATE TABLE graph_edges (
    minute      INTEGER NOT NULL,
    from_source TEXT NOT NULL,   -- the parent span's source
    to_source   TEXT NOT NULL,   -- the child span's source
    calls       INTEGER NOT NULL,
    errors      INTEGER NOT NULL,
    durations   TEXT NOT NULL,
    PRIMARY KEY (minute, from_source, to_source)
) STRICT, WITHOUT ROWID;

-- Spans applied before this table existed are counted once, by the store when it opens (the
-- histograms need code): a row here means it has not done so yet, for the spans through through_seq.
CREATE TABLE graph_backfill (
    through_seq INTEGER NOT NULL
) STRICT;
INSERT INTO graph_backfill (through_seq) SELECT MAX(seq) FROM operation_logs HAVING COUNT(*) > 0;
