-- Traces by source, operation and stage (GET /api/traces?source=…&operation=…&stage=…): the
-- PostgreSQL variant finds a trace's spans of one value through an index on (value, trace), made
-- in 004 once spans carry their trace's number; here, the filters' columns by value alone.
CREATE INDEX operation_logs_by_source ON operation_logs (source);
CREATE INDEX operation_logs_by_operation ON operation_logs (operation);
