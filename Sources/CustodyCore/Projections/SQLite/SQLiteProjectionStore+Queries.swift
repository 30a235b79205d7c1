import GRDB

// The reads of ``ProjectionStore`` on SQLite: every SELECT the operations need, returning typed
// records. The tables are those of `schema/projections/*.sql`.

// MARK: Tasks and orders

extension SQLiteProjectionStore {
    public func task(uuid: String) async throws -> TaskRecord? {
        try await read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM tasks WHERE uuid = ?", arguments: [uuid]).map(TaskRecord.init(row:))
        }
    }

    public func tasks(orderId: String?, status: TaskStatus?, afterCreatedSeq: UInt64, limit: Int) async throws -> [TaskRecord] {
        try await read { db in
            var sql = "SELECT * FROM tasks WHERE created_seq > ?"
            var arguments: [any DatabaseValueConvertible] = [Int64(afterCreatedSeq)]
            if let orderId {
                sql += " AND order_id = ?"
                arguments.append(orderId)
            }
            if let status {
                sql += " AND status = ?"
                arguments.append(status.rawValue)
            }
            sql += " ORDER BY created_seq LIMIT ?"
            arguments.append(limit)
            return try Row.fetchAll(db, sql: sql, arguments: StatementArguments(arguments)).map(TaskRecord.init(row:))
        }
    }

    public func followups(orderId: String, throughSeq: UInt64) async throws -> [FollowupRecord] {
        let bound = Int64(clamping: throughSeq)
        return try await read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM followups WHERE order_id = ? AND seq <= ? ORDER BY seq", arguments: [orderId, bound])
                .map(FollowupRecord.init(row:))
        }
    }

    public func orderActivity(orderId: String) async throws -> OrderActivity {
        try await read { db in
            var activity = OrderActivity()
            activity.tasks = try Row.fetchAll(db, sql: "SELECT * FROM tasks WHERE order_id = ? ORDER BY created_seq", arguments: [orderId])
                .map(TaskRecord.init(row:))
            activity.followups = try Row.fetchAll(db, sql: "SELECT * FROM followups WHERE order_id = ? ORDER BY seq", arguments: [orderId])
                .map(FollowupRecord.init(row:))
            let errorRow = try Row.fetchOne(
                db,
                sql:
                    "SELECT COUNT(*) AS n, MAX(seq) AS last, MIN(created_at) AS first_at, MAX(created_at) AS last_at FROM error_events WHERE order_id = ?",
                arguments: [orderId]
            )!
            activity.errors.count = errorRow["n"]
            activity.errors.lastSeq = errorRow["last"]
            activity.errors.firstAt = errorRow["first_at"]
            activity.errors.lastAt = errorRow["last_at"]
            let spanRow = try Row.fetchOne(
                db,
                sql: """
                    SELECT COUNT(*) AS n, COUNT(DISTINCT trace_id) AS traces, COALESCE(SUM(is_error), 0) AS errors, MAX(seq) AS last,
                        MIN(ingested_at) AS first_at, MAX(ingested_at) AS last_at
                    FROM operation_logs WHERE task_uuid IN (SELECT uuid FROM tasks WHERE order_id = ?)
                    """,
                arguments: [orderId]
            )!
            activity.spans.count = spanRow["n"]
            activity.spans.traces = spanRow["traces"]
            activity.spans.errors = spanRow["errors"]
            activity.spans.lastSeq = spanRow["last"]
            activity.spans.firstAt = spanRow["first_at"]
            activity.spans.lastAt = spanRow["last_at"]
            if let row = try Row.fetchOne(
                db,
                sql: "SELECT revision, report FROM delivery_reports WHERE order_id = ? ORDER BY revision DESC LIMIT 1",
                arguments: [orderId]
            ) {
                activity.latestReport = (row["revision"], JSONText(row["report"] as String))
            }
            return activity
        }
    }

    public func latestReport(orderId: String) async throws -> JSONText? {
        try await read { db in
            try String.fetchOne(
                db,
                sql: "SELECT report FROM delivery_reports WHERE order_id = ? ORDER BY revision DESC LIMIT 1",
                arguments: [orderId]
            ).map(JSONText.init)
        }
    }
}

extension TaskRecord {
    init(row: Row) {
        uuid = row["uuid"]
        orderId = row["order_id"]
        status = TaskStatus(rawValue: row["status"]) ?? .pending
        payload = JSONText(row["payload"] as String)
        createdAt = row["created_at"]
        updatedAt = row["updated_at"]
        lastSeq = UInt64(row["last_seq"] as Int64)
        createdSeq = UInt64(row["created_seq"] as Int64)
    }
}

extension FollowupRecord {
    init(row: Row) {
        id = row["id"]
        orderId = row["order_id"]
        type = row["type"]
        note = row["note"]
        impact = FollowupImpact(rawValue: row["impact"]) ?? .low
        createdAt = row["created_at"]
        seq = UInt64(row["seq"] as Int64)
    }
}

// MARK: Traces and replays

extension SQLiteProjectionStore {
    public func trace(_ traceId: String) async throws -> TraceLocation? {
        // A recent trace's number is in memory; the others' are in trace_keys. Looked up before
        // the snapshot is taken (RecentTraces).
        let recentNumber = recentTraceNumber(traceId)
        return try await read { db in
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
            conditions.append("(t.start < ? OR (t.start = ? AND t.trace_id < ?))")
            arguments += [after.start, after.start, after.traceId]
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
        if let query = search.query, !query.isEmpty {
            var pattern = "%"
            for character in query {
                if character == "\\" || character == "%" || character == "_" { pattern.append("\\") }
                pattern.append(character)
            }
            pattern.append("%")
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
            let sql =
                "SELECT t.* FROM trace_summaries t" + (conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND "))
                + " ORDER BY t.start DESC, t.trace_id DESC LIMIT ?"
            return try Row.fetchAll(db, sql: sql, arguments: statementArguments).map(TraceSummaryRecord.init(row:))
        }
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
            try Row.fetchAll(db, sql: "SELECT * FROM replays ORDER BY started_at DESC LIMIT ?", arguments: [limit]).map(ReplayRecord.init(row:))
        }
    }

    public func runningReplays() async throws -> [ReplayRecord] {
        try await read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM replays WHERE status = ? ORDER BY started_at", arguments: [ReplayStatus.running.rawValue])
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

// MARK: GitHub operations

extension SQLiteProjectionStore {
    public func githubOperation(id: String) async throws -> GitHubOperationRecord? {
        try await read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM github_operations WHERE id = ?", arguments: [id]).map(GitHubOperationRecord.init(row:))
        }
    }

    public func githubOperation(idempotencyKey: String) async throws -> GitHubOperationRecord? {
        try await read { db in
            try Row.fetchOne(
                db,
                sql: "SELECT * FROM github_operations WHERE idempotency_key = ? ORDER BY requested_seq LIMIT 1",
                arguments: [idempotencyKey]
            ).map(GitHubOperationRecord.init(row:))
        }
    }

    public func githubOperations(status: GitHubOperationRecord.Status?, limit: Int) async throws -> [GitHubOperationRecord] {
        try await read { db in
            try Row.fetchAll(
                db,
                sql: "SELECT * FROM github_operations WHERE ?1 IS NULL OR status = ?1 ORDER BY requested_seq DESC LIMIT ?2",
                arguments: [status?.rawValue, limit]
            ).map(GitHubOperationRecord.init(row:))
        }
    }

    public func pendingGitHubOperations() async throws -> [GitHubPendingOperation] {
        try await read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT id, kind, params, trace_id, requested_seq, requested_at, attempts, next_attempt_at
                    FROM github_operations WHERE status = 'pending' ORDER BY requested_seq
                    """
            ).compactMap { row -> GitHubPendingOperation? in
                guard let kind = GitHubOperationKind(rawValue: row["kind"]), let params = JSONText(row["params"] as String).jsonValue.objectValue
                else { return nil }
                let attempts: Int64 = row["attempts"]
                let requestedSeq: Int64 = row["requested_seq"]
                return GitHubPendingOperation(
                    id: row["id"],
                    kind: kind,
                    params: params,
                    traceId: row["trace_id"],
                    requestedSeq: UInt64(requestedSeq),
                    requestedAt: row["requested_at"],
                    attempts: UInt32(clamping: attempts),
                    notBefore: row["next_attempt_at"] ?? 0,
                    uncertain: true
                )
            }
        }
    }
}

extension GitHubOperationRecord {
    init(row: Row) {
        self.init(
            id: row["id"],
            kind: GitHubOperationKind(rawValue: row["kind"]) ?? .createIssue,
            status: Status(rawValue: row["status"]) ?? .pending,
            params: JSONText(row["params"] as String).jsonValue,
            attempts: row["attempts"],
            idempotencyKey: row["idempotency_key"],
            traceId: row["trace_id"],
            requestedAt: row["requested_at"],
            updatedAt: row["updated_at"]
        )
        result = (row["result"] as String?).map { JSONText($0).jsonValue }
        error = (row["error"] as String?).map { JSONText($0).jsonValue }
        nextAttemptAt = row["next_attempt_at"]
    }
}
