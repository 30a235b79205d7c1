import GRDB

// The reads of `trace_summaries`, `trace_spans`, `trace_keys`, `value_batches`, `operation_logs`
// and `replays` for ``ProjectionStore``; tables in `schema/projections/`.

extension SQLiteProjectionStore {
    public func trace(_ traceId: String) async throws -> TraceLocation? {
        // A recent trace's number is in memory; the others' are in trace_keys. Looked up before
        // the snapshot is taken (RecentTraces).
        let recentNumber = recentTraceNumber(traceId)
        return try await read { db in try Self.trace(traceId, number: recentNumber, db) }
    }

    /// The traces in one read (one snapshot), their numbers looked up in memory first.
    public func traces(_ traceIds: [String]) async throws -> [String: TraceLocation] {
        let lookups = traceIds.map { ($0, recentTraceNumber($0)) }
        return try await read { db in
            var found: [String: TraceLocation] = [:]
            for (traceId, number) in lookups where found[traceId] == nil {
                if let location = try Self.trace(traceId, number: number, db) { found[traceId] = location }
            }
            return found
        }
    }

    private static func trace(_ traceId: String, number recentNumber: Int64?, _ db: Database) throws -> TraceLocation? {
        var seqs: [UInt64] = []
        let row: Row?
        if let recentNumber {
            row = try Row.fetchOne(db, sql: "SELECT * FROM trace_summaries WHERE id = ?", arguments: [recentNumber])
        } else {
            row = try Row.fetchOne(db, sql: "SELECT s.* " + RecentTraces.byKey, arguments: [TraceKey.of(traceId), traceId])
        }
        guard let row else { return nil }
        let id: Int64 = row["id"]
        for list in try String.fetchAll(db, sql: "SELECT seqs FROM trace_spans WHERE trace = ? ORDER BY first_seq", arguments: [id]) {
            seqs += Self.seqs(inJSONArray: list)
        }
        return TraceLocation(seqs: seqs, summary: TraceSummaryRecord(row: row))
    }

    /// The seqs of a `trace_spans.seqs` array (`[1,2,3]`).
    static func seqs(inJSONArray text: String) -> [UInt64] {
        var seqs: [UInt64] = []
        var current: UInt64 = 0
        var inNumber = false
        for byte in text.utf8 {
            if byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") {
                current = current &* 10 &+ UInt64(byte - UInt8(ascii: "0"))
                inNumber = true
            } else if inNumber {
                seqs.append(current)
                current = 0
                inNumber = false
            }
        }
        if inNumber { seqs.append(current) }
        return seqs
    }

    public func searchTraces(_ search: TraceSearch, after: TraceCursor?, limit: Int) async throws -> [TraceSummaryRecord] {
        var conditions: [String] = []
        var arguments: [any DatabaseValueConvertible] = []
        if let after {
            conditions.append(Self.afterCursor)
            arguments += [after.start, after.traceId]
        }
        // A trace's sources are in its summary; its operations and stages are in its spans,
        // found through trace_spans.
        if let source = search.source {
            conditions.append("EXISTS (SELECT 1 FROM json_each(t.sources) s WHERE s.value = ?)")
            arguments.append(source)
        }
        for (column, value) in [("operation", search.operation), ("stage", search.stage)] {
            guard let value else { continue }
            conditions.append(
                "EXISTS (SELECT 1 FROM trace_spans x, json_each(x.seqs) j, operation_logs o WHERE x.trace = t.id AND o.seq = j.value AND o.\(column) = ?)"
            )
            arguments.append(value)
        }
        if search.errorsOnly { conditions.append("t.error_count > 0") }
        if let minimum = search.minDurationMs {
            conditions.append("(t.\"end\" - t.start) >= ?")
            arguments.append(Int64(minimum * 1_000_000))
        }
        if let since = search.since {
            conditions.append("t.start >= ?")
            arguments.append(since)
        }
        if let until = search.until {
            conditions.append("t.start <= ?")
            arguments.append(until)
        }
        if let pattern = search.containsPattern {
            conditions.append("(t.trace_id LIKE ? ESCAPE '\\' OR t.root_operation LIKE ? ESCAPE '\\' OR t.sources LIKE ? ESCAPE '\\')")
            arguments += [pattern, pattern, pattern]
        }
        let filters = [("source", search.source), ("operation", search.operation), ("stage", search.stage)].compactMap { filter in
            filter.1.map { (column: filter.0, value: $0) }
        }
        let fixedConditions = conditions
        let statementArguments = StatementArguments(arguments) ?? StatementArguments()
        return try await read { db in
            var conditions = fixedConditions
            var statementArguments = statementArguments
            // A value found in few batches (value_batches): its traces are the ones its spans in
            // those batches belong to — a scan of those seq ranges, not of every trace.
            if let rare = try Self.rarestFilter(filters, db) {
                var numbers = Set<Int64>()
                for (first, last) in rare.ranges {
                    numbers.formUnion(
                        try Int64.fetchAll(
                            db,
                            sql: "SELECT DISTINCT trace FROM operation_logs WHERE seq BETWEEN ? AND ? AND \(rare.column) = ?",
                            arguments: [first, last, rare.value]
                        )
                    )
                }
                conditions.append("t.id IN (SELECT value FROM json_each(?))")
                statementArguments += [JSONValue.array(numbers.sorted().map { .integer($0) }).jsonText.description]
            }
            statementArguments += [limit]
            return try Row.fetchAll(db, sql: Self.searchSQL(conditions), arguments: statementArguments).map(TraceSummaryRecord.init(row:))
        }
    }

    /// The condition for the traces after a cursor (arguments: start, trace id). A row value, not
    /// `start < ? OR (start = ? AND trace_id < ?)`: SQLite plans that OR as two index lookups whose
    /// union it then sorts whole — every trace older than the cursor read and sorted, seconds a
    /// page on a 10M-event log (docs/benchmarks.md, P14).
    static let afterCursor = "(t.start, t.trace_id) < (?, ?)"

    /// A page of ``searchTraces(_:after:limit:)`` over these conditions on `t` (`trace_summaries`),
    /// newest first; its last argument is the limit.
    static func searchSQL(_ conditions: [String]) -> String {
        "SELECT t.* FROM trace_summaries t" + (conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND "))
            + " ORDER BY t.start DESC, t.trace_id DESC LIMIT ?"
    }

    /// At most this many batches hold a value for a filter on it to go through `value_batches`.
    static let rareValueBatches = 64

    /// Of the source, operation and stage filters, the one whose value is in the fewest batches,
    /// if that is at most ``rareValueBatches``, with those batches' seq ranges.
    static func rarestFilter(
        _ filters: [(column: String, value: String)],
        _ db: Database
    ) throws -> (column: String, value: String, ranges: [(Int64, Int64)])? {
        var rarest: (column: String, value: String, ranges: [(Int64, Int64)])?
        for (column, value) in filters {
            let ranges = try Row.fetchAll(
                db,
                sql: "SELECT first_seq, last_seq FROM value_batches WHERE kind = ? AND value = ? LIMIT ?",
                arguments: [column, value, rareValueBatches + 1]
            ).map { ($0[0] as Int64, $0[1] as Int64) }
            if ranges.count <= rareValueBatches, ranges.count < rarest?.ranges.count ?? .max { rarest = (column, value, ranges) }
        }
        return rarest
    }

    public func replays(limit: Int) async throws -> [ReplayRecord] {
        try await read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM replays ORDER BY started_at DESC, new_trace DESC LIMIT ?", arguments: [limit]).map(
                ReplayRecord.init(row:)
            )
        }
    }

    public func runningReplays() async throws -> [ReplayRecord] {
        try await read { db in
            try Row.fetchAll(
                db,
                sql: "SELECT * FROM replays WHERE status = ? ORDER BY started_at, new_trace",
                arguments: [ReplayStatus.running.rawValue]
            )
            .map(ReplayRecord.init(row:))
        }
    }
}

extension TraceSummaryRecord {
    init(row: Row) {
        self.init(
            traceId: row["trace_id"],
            rootOperation: row["root_operation"],
            start: row["start"],
            end: row["end"],
            spanCount: row["span_count"],
            errorCount: row["error_count"],
            sourcesJSON: row["sources"],
            replayOf: row["replay_of"]
        )
    }
}

extension ReplayRecord {
    init(row: Row) {
        self.init(
            newTrace: row["new_trace"],
            fromTrace: row["from_trace"],
            mode: ReplayMode(rawValue: row["mode"]) ?? .dryRun,
            speed: row["speed"],
            status: ReplayStatus(rawValue: row["status"]),
            spans: row["spans"],
            startedAt: row["started_at"],
            completedAt: row["completed_at"]
        )
    }
}
