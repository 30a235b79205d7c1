import GRDB

/// The custody graph in SQLite (`graph_nodes`, `graph_edges`: schema/projections/008_graph.sql).
extension ProjectionWriter {
    /// Folds the batch's spans into the graph and adds what they count to its rows. Runs after
    /// the batch's traces have their rows and before its spans are in `operation_logs`, so a
    /// trace's stored spans are those of earlier batches. `isNew[slot]`: the trace had no row
    /// before the batch.
    func applyGraph(
        _ events: [Event],
        grouping: ProjectionBatch.SpanGrouping,
        numbers: [Int64],
        isNew: [Bool],
        cachedLinks: (String) -> TraceLinks?
    ) throws -> GraphProjection.Changes {
        let changes = try GraphProjection.fold(events, grouping: grouping) { slot in
            if isNew[slot] { return TraceLinks() }
            return try cachedLinks(grouping.traces[slot].part.summary.traceId) ?? Self.storedLinks(db, trace: numbers[slot])
        }
        try Self.add(changes.rows, to: db)
        return changes
    }

    /// The links of a trace from its spans in `operation_logs`, in seq order.
    static func storedLinks(_ db: Database, trace: Int64) throws -> TraceLinks {
        var select = try DirectStatement(
            db,
            sql: """
                SELECT span_id, parent_span_id, source, timestamp, duration_ms, is_error FROM operation_logs
                WHERE seq IN (SELECT value FROM trace_spans, json_each(trace_spans.seqs) WHERE trace_spans.trace = ?) ORDER BY seq
                """
        )
        select.bind(trace)
        defer { select.reset() }
        var spans: [TraceLinks.StoredSpan] = []
        while try select.step(db) {
            spans.append(Self.storedSpan(select))
        }
        return TraceLinks(replaying: spans)
    }

    /// The span in the current row of a query that selects `span_id, parent_span_id, source,
    /// timestamp, duration_ms, is_error`.
    static func storedSpan(_ row: DirectStatement) -> TraceLinks.StoredSpan {
        TraceLinks.StoredSpan(
            spanId: row.text(0),
            parentSpanId: row.text(1),
            call: GraphProjection.Call(
                source: row.text(2) ?? "",
                minute: GraphProjection.minute(ofTimestamp: row.int64(3)),
                durationMs: row.double(4),
                isError: row.int64(5) != 0
            )
        )
    }

    /// Adds tallies to the graph's rows: each row read, merged and written back.
    static func add(_ rows: [GraphProjection.Key: GraphProjection.Tally], to db: Database) throws {
        guard !rows.isEmpty else { return }
        var readNode = try DirectStatement(db, sql: "SELECT spans, errors, durations FROM graph_nodes WHERE minute = ? AND source = ?")
        var writeNode = try DirectStatement(
            db,
            sql: "INSERT OR REPLACE INTO graph_nodes (minute, source, spans, errors, durations) VALUES (?, ?, ?, ?, ?)"
        )
        var readEdge = try DirectStatement(
            db,
            sql: "SELECT calls, errors, durations FROM graph_edges WHERE minute = ? AND from_source = ? AND to_source = ?"
        )
        var writeEdge = try DirectStatement(
            db,
            sql: "INSERT OR REPLACE INTO graph_edges (minute, from_source, to_source, calls, errors, durations) VALUES (?, ?, ?, ?, ?, ?)"
        )
        for (key, added) in rows {
            var tally = added
            if let from = key.from {
                readEdge.bind(key.minute)
                readEdge.bind(from)
                readEdge.bind(key.source)
                if try readEdge.step(db) { tally.merge(try storedTally(readEdge)) }
                readEdge.reset()
                writeEdge.bind(key.minute)
                writeEdge.bind(from)
                writeEdge.bind(key.source)
                bind(tally, to: &writeEdge)
                try writeEdge.run(db)
            } else {
                readNode.bind(key.minute)
                readNode.bind(key.source)
                if try readNode.step(db) { tally.merge(try storedTally(readNode)) }
                readNode.reset()
                writeNode.bind(key.minute)
                writeNode.bind(key.source)
                bind(tally, to: &writeNode)
                try writeNode.run(db)
            }
        }
    }

    private static func storedTally(_ row: DirectStatement) throws -> GraphProjection.Tally {
        guard let durations = LatencyHistogram(text: row.text(2) ?? "") else {
            throw GraphProjection.GraphRowUnreadable(durations: row.text(2) ?? "")
        }
        return GraphProjection.Tally(count: row.int64(0), errors: row.int64(1), durations: durations)
    }

    private static func bind(_ tally: GraphProjection.Tally, to statement: inout DirectStatement) {
        statement.bind(tally.count)
        statement.bind(tally.errors)
        statement.bind(tally.durations.text)
    }
}

extension SQLiteProjectionStore {
    /// Counts the spans applied before the graph's tables existed (a row in `graph_backfill`),
    /// trace by trace, in one transaction; then the row goes. Runs when the store opens.
    static func backfillGraph(_ db: Database) throws {
        guard let through = try Int64.fetchOne(db, sql: "SELECT through_seq FROM graph_backfill") else { return }
        var select = try DirectStatement(
            db,
            sql: """
                SELECT span_id, parent_span_id, source, timestamp, duration_ms, is_error, trace FROM operation_logs
                WHERE seq <= ? ORDER BY trace, seq
                """
        )
        select.bind(through)
        defer { select.reset() }
        var changes = GraphProjection.Changes()
        var links = TraceLinks()
        var trace: Int64?
        while try select.step(db) {
            let number = select.int64(6)
            if number != trace {
                links = TraceLinks()
                trace = number
            }
            links.add(ProjectionWriter.storedSpan(select), into: &changes)
        }
        try ProjectionWriter.add(changes.rows, to: db)
        try db.execute(sql: "DELETE FROM graph_backfill")
    }

    /// The graph's rows from minute `first` through minute `last`, summed per node and edge.
    public func graph(fromMinute first: Int64, throughMinute last: Int64) async throws -> GraphProjection.Window {
        try await pool.read { db in
            var window = GraphProjection.Window()
            let rows = try Row.fetchCursor(
                db,
                sql: """
                    SELECT NULL, source, spans, errors, durations FROM graph_nodes WHERE minute BETWEEN ?1 AND ?2
                    UNION ALL
                    SELECT from_source, to_source, calls, errors, durations FROM graph_edges WHERE minute BETWEEN ?1 AND ?2
                    """,
                arguments: [first, last]
            )
            while let row = try rows.next() {
                try window.add(from: row[0], source: row[1], count: row[2], errors: row[3], durations: row[4])
            }
            return window
        }
    }
}
