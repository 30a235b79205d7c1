-- Traces by source and by operation (GET /api/traces?source=…&operation=…, newest first): the
-- spans of one source or operation, newest first, from which the traces are found. Indexing the
-- column alone orders each range by rowid, i.e. by seq: every insert lands at the end of its range
-- (a span's own timestamp, set by its sender, would scatter inserts across the tree: measured at
-- half the projector's throughput).
CREATE INDEX operation_logs_by_source ON operation_logs (source);
CREATE INDEX operation_logs_by_operation ON operation_logs (operation);
