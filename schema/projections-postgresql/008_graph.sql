-- The custody graph (the PostgreSQL variant of schema/projections/008_graph.sql, which says what
-- the rows mean).
CREATE TABLE graph_nodes (
    minute    bigint NOT NULL,
    source    text COLLATE "C" NOT NULL,
    spans     bigint NOT NULL,
    errors    bigint NOT NULL,
    durations text NOT NULL,
    PRIMARY KEY (minute, source)
);

CREATE TABLE graph_edges (
    minute      bigint NOT NULL,
    from_source text COLLATE "C" NOT NULL,
    to_source   text COLLATE "C" NOT NULL,
    calls       bigint NOT NULL,
    errors      bigint NOT NULL,
    durations   text NOT NULL,
    PRIMARY KEY (minute, from_source, to_source)
);

CREATE TABLE graph_backfill (
    through_seq bigint NOT NULL
);
INSERT INTO graph_backfill (through_seq) SELECT MAX(seq) FROM operation_logs HAVING COUNT(*) > 0;
