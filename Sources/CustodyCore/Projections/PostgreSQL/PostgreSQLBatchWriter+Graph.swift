import Logging
import PostgresNIO

/// The custody graph in PostgreSQL (`graph_nodes`, `graph_edges`): the same rows as
/// ``ProjectionWriter/applyGraph(_:grouping:numbers:isNew:cachedLinks:)`` writes into SQLite.
extension PostgreSQLBatchWriter {
    /// Folds the batch's spans into the graph and adds what they count to its rows: the links of
    /// the traces that had spans before and are not in memory are read in one query. Runs before
    /// the batch's spans are in `operation_logs`.
    func applyGraph(
        _ batch: ProjectionBatch,
        numbers: [Int64],
        isNew: [Bool],
        links cache: TraceLinksCache
    ) async throws -> GraphProjection.Changes {
        let traces = batch.grouping.traces
        let missing = traces.indices.filter { !isNew[$0] && cache.links(of: traces[$0].part.summary.traceId) == nil }.map { numbers[$0] }
        let stored = try await Self.storedLinks(connection, logger: logger, traces: missing)
        let changes = GraphProjection.fold(batch.events, grouping: batch.grouping) { slot in
            if isNew[slot] { return TraceLinks() }
            return cache.links(of: traces[slot].part.summary.traceId) ?? stored[numbers[slot]] ?? TraceLinks()
        }
        try await Self.add(changes.rows, connection: connection, logger: logger)
        return changes
    }

    /// The links of traces (by number) from their spans in `operation_logs`.
    static func storedLinks(_ connection: PostgresConnection, logger: Logger, traces: [Int64]) async throws -> [Int64: TraceLinks] {
        guard !traces.isEmpty else { return [:] }
        let rows = try await connection.queryIfOpen(
            """
            SELECT trace, span_id, parent_span_id, source, timestamp, duration_ms, is_error FROM operation_logs
            WHERE seq IN (SELECT unnest(seqs) FROM trace_spans WHERE trace = ANY(\(traces))) ORDER BY trace, seq
            """,
            logger: logger
        )
        var spans: [Int64: [TraceLinks.StoredSpan]] = [:]
        for try await row in rows {
            let (trace, span) = try storedSpan(row.makeRandomAccess())
            spans[trace, default: []].append(span)
        }
        return spans.mapValues(TraceLinks.init(replaying:))
    }

    /// A row of `trace, span_id, parent_span_id, source, timestamp, duration_ms, is_error`.
    private static func storedSpan(_ row: PostgresRandomAccessRow) throws -> (Int64, TraceLinks.StoredSpan) {
        let span = TraceLinks.StoredSpan(
            spanId: try row[1].decode(String?.self),
            parentSpanId: try row[2].decode(String?.self),
            call: GraphProjection.Call(
                source: try row[3].decode(String.self),
                minute: GraphProjection.minute(ofTimestamp: try row[4].decode(Int64.self)),
                durationMs: try row[5].decode(Double?.self),
                isError: try row[6].decode(Int64.self) != 0
            )
        )
        return (try row[0].decode(Int64.self), span)
    }

    /// Adds tallies to the graph's rows: the rows touched are read in one query per table,
    /// merged in Swift and written back by one upsert per table.
    static func add(_ rows: [GraphProjection.Key: GraphProjection.Tally], connection: PostgresConnection, logger: Logger) async throws {
        let nodes = rows.filter { $0.key.from == nil }
        let edges = rows.filter { $0.key.from != nil }
        if !nodes.isEmpty {
            var merged = nodes
            let minutes = nodes.keys.map(\.minute)
            let sources = nodes.keys.map(\.source)
            for try await row in try await connection.queryIfOpen(
                """
                SELECT g.minute, g.source, g.spans, g.errors, g.durations FROM graph_nodes g
                JOIN unnest(\(minutes)::bigint[], \(sources)::text[]) AS k(minute, source) ON g.minute = k.minute AND g.source = k.source
                """,
                logger: logger
            ) {
                let (minute, source, count, errors, durations) = try row.decode((Int64, String, Int64, Int64, String).self)
                try merge(&merged, GraphProjection.Key(minute: minute, from: nil, source: source), count, errors, durations)
            }
            let rows = Array(merged)
            _ = try await connection.queryIfOpen(
                """
                INSERT INTO graph_nodes (minute, source, spans, errors, durations)
                SELECT * FROM unnest(\(rows.map(\.key.minute))::bigint[], \(rows.map(\.key.source))::text[], \(rows.map(\.value.count))::bigint[],
                    \(rows.map(\.value.errors))::bigint[], \(rows.map(\.value.durations.text))::text[])
                ON CONFLICT (minute, source) DO UPDATE SET spans = excluded.spans, errors = excluded.errors, durations = excluded.durations
                """,
                logger: logger
            )
        }
        if !edges.isEmpty {
            var merged = edges
            let minutes = edges.keys.map(\.minute)
            let froms = edges.keys.map { $0.from ?? "" }
            let tos = edges.keys.map(\.source)
            for try await row in try await connection.queryIfOpen(
                """
                SELECT g.minute, g.from_source, g.to_source, g.calls, g.errors, g.durations FROM graph_edges g
                JOIN unnest(\(minutes)::bigint[], \(froms)::text[], \(tos)::text[]) AS k(minute, from_source, to_source)
                    ON g.minute = k.minute AND g.from_source = k.from_source AND g.to_source = k.to_source
                """,
                logger: logger
            ) {
                let (minute, from, to, count, errors, durations) = try row.decode((Int64, String, String, Int64, Int64, String).self)
                try merge(&merged, GraphProjection.Key(minute: minute, from: from, source: to), count, errors, durations)
            }
            let rows = Array(merged)
            _ = try await connection.queryIfOpen(
                """
                INSERT INTO graph_edges (minute, from_source, to_source, calls, errors, durations)
                SELECT * FROM unnest(\(rows.map(\.key.minute))::bigint[], \(rows.map { $0.key.from ?? "" })::text[], \(rows.map(\.key.source))::text[],
                    \(rows.map(\.value.count))::bigint[], \(rows.map(\.value.errors))::bigint[],
                    \(rows.map(\.value.durations.text))::text[])
                ON CONFLICT (minute, from_source, to_source) DO UPDATE SET calls = excluded.calls, errors = excluded.errors,
                    durations = excluded.durations
                """,
                logger: logger
            )
        }
    }

    private static func merge(
        _ rows: inout [GraphProjection.Key: GraphProjection.Tally],
        _ key: GraphProjection.Key,
        _ count: Int64,
        _ errors: Int64,
        _ durations: String
    ) throws {
        guard let histogram = LatencyHistogram(text: durations) else { throw GraphProjection.GraphRowUnreadable(durations: durations) }
        rows[key, default: GraphProjection.Tally()].merge(GraphProjection.Tally(count: count, errors: errors, durations: histogram))
    }

    /// Counts the spans applied before the graph's tables existed (a row in `graph_backfill`),
    /// trace by trace; then the row goes. Runs in the migrations' transaction.
    static func backfillGraph(_ connection: PostgresConnection, logger: Logger) async throws {
        guard
            let through = try await connection.queryIfOpen("SELECT through_seq FROM graph_backfill", logger: logger).collect().first?
                .decode(Int64.self)
        else { return }
        var changes = GraphProjection.Changes()
        var links = TraceLinks()
        var current: Int64?
        for try await row in try await connection.queryIfOpen(
            """
            SELECT trace, span_id, parent_span_id, source, timestamp, duration_ms, is_error FROM operation_logs
            WHERE seq <= \(through) ORDER BY trace, seq
            """,
            logger: logger
        ) {
            let (trace, span) = try storedSpan(row.makeRandomAccess())
            if trace != current {
                links = TraceLinks()
                current = trace
            }
            links.add(span, into: &changes)
        }
        try await add(changes.rows, connection: connection, logger: logger)
        _ = try await connection.queryIfOpen("DELETE FROM graph_backfill", logger: logger)
    }
}

extension PostgreSQLProjectionStore {
    /// The graph's rows from minute `first` through minute `last`, summed per node and edge.
    public func graph(fromMinute first: Int64, throughMinute last: Int64) async throws -> GraphProjection.Window {
        let logger = logger
        return try await reading { connection in
            var window = GraphProjection.Window()
            for try await row in try await connection.queryIfOpen(
                """
                SELECT NULL::text, source, spans, errors, durations FROM graph_nodes WHERE minute BETWEEN \(first) AND \(last)
                UNION ALL
                SELECT from_source, to_source, calls, errors, durations FROM graph_edges WHERE minute BETWEEN \(first) AND \(last)
                """,
                logger: logger
            ) {
                let (from, source, count, errors, durations) = try row.decode((String?, String, Int64, Int64, String).self)
                try window.add(from: from, source: source, count: count, errors: errors, durations: durations)
            }
            return window
        }
    }
}
