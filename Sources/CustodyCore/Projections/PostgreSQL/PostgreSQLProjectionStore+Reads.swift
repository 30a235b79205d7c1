import CustodyLog
import Logging
import PostgresNIO

// The reads of ``ProjectionStore`` on PostgreSQL: the SQLite store's queries
// (`SQLite/SQLiteProjectionStore+*.swift`) in PostgreSQL's dialect, answering the same.

extension PostgreSQLProjectionStore {
    // MARK: Tasks and orders

    public func task(uuid: String) async throws -> TaskRecord? {
        try await rows("SELECT * FROM tasks WHERE uuid = \(uuid)").first.map(TaskRecord.init(postgres:))
    }

    public func tasks(orderId: String?, status: TaskStatus?, afterCreatedSeq: UInt64, limit: Int) async throws -> [TaskRecord] {
        try await rows(
            """
            SELECT * FROM tasks WHERE created_seq > \(Int64(clamping: afterCreatedSeq))
                AND (\(orderId)::text IS NULL OR order_id = \(orderId)) AND (\(status?.rawValue)::text IS NULL OR status = \(status?.rawValue))
            ORDER BY created_seq LIMIT \(Int64(limit))
            """
        ).map(TaskRecord.init(postgres:))
    }

    public func followups(orderId: String, throughSeq: UInt64) async throws -> [FollowupRecord] {
        try await rows("SELECT * FROM followups WHERE order_id = \(orderId) AND seq <= \(Int64(clamping: throughSeq)) ORDER BY seq")
            .map(FollowupRecord.init(postgres:))
    }

    public func orderActivity(orderId: String) async throws -> OrderActivity {
        // One snapshot for all of it.
        let logger = logger
        return try await reading { connection in try await Self.orderActivity(orderId: orderId, on: connection, logger: logger) }
    }

    private static func orderActivity(orderId: String, on connection: PostgresConnection, logger: Logger) async throws -> OrderActivity {
        _ = try await connection.queryIfOpen("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", logger: logger)
        do {
            func rows(_ query: PostgresQuery) async throws -> [PostgresRandomAccessRow] {
                try await connection.queryIfOpen(query, logger: logger).collect().map { $0.makeRandomAccess() }
            }
            var activity = OrderActivity()
            activity.tasks = try await rows("SELECT * FROM tasks WHERE order_id = \(orderId) ORDER BY created_seq").map(
                TaskRecord.init(postgres:)
            )
            activity.followups = try await rows("SELECT * FROM followups WHERE order_id = \(orderId) ORDER BY seq")
                .map(FollowupRecord.init(postgres:))
            let errors = try await rows(
                "SELECT COUNT(*), MAX(seq), MIN(created_at), MAX(created_at) FROM error_events WHERE order_id = \(orderId)"
            )[0]
            activity.errors.count = Int(try errors[0].decode(Int64.self))
            activity.errors.lastSeq = try errors[1].decode(Int64?.self)
            activity.errors.firstAt = try errors[2].decode(Int64?.self)
            activity.errors.lastAt = try errors[3].decode(Int64?.self)
            let spans = try await rows(
                """
                SELECT COUNT(*), COUNT(DISTINCT trace_id), COALESCE(SUM(is_error), 0)::bigint, MAX(seq), MIN(ingested_at), MAX(ingested_at)
                FROM operation_logs WHERE task_uuid IN (SELECT uuid FROM tasks WHERE order_id = \(orderId))
                """
            )[0]
            activity.spans.count = Int(try spans[0].decode(Int64.self))
            activity.spans.traces = Int(try spans[1].decode(Int64.self))
            activity.spans.errors = Int(try spans[2].decode(Int64.self))
            activity.spans.lastSeq = try spans[3].decode(Int64?.self)
            activity.spans.firstAt = try spans[4].decode(Int64?.self)
            activity.spans.lastAt = try spans[5].decode(Int64?.self)
            if let report = try await rows(
                "SELECT revision, report, seq FROM delivery_reports WHERE order_id = \(orderId) ORDER BY revision DESC LIMIT 1"
            ).first {
                activity.latestReport = (
                    try report[0].decode(Int64.self), JSONText(try report[1].decode(String.self)), try report[2].decode(Int64.self)
                )
            }
            _ = try await connection.queryIfOpen("COMMIT", logger: logger)
            return activity
        } catch {
            if !connection.isClosed { _ = try? await connection.queryIfOpen("ROLLBACK", logger: logger) }
            throw error
        }
    }

    public func latestReport(orderId: String) async throws -> JSONText? {
        try await rows("SELECT report FROM delivery_reports WHERE order_id = \(orderId) ORDER BY revision DESC LIMIT 1").first.map {
            JSONText(try $0[0].decode(String.self))
        }
    }

    // MARK: Traces and replays

    public func trace(_ traceId: String) async throws -> TraceLocation? {
        // The summary and every seq, in trace_spans order, in one statement (one snapshot).
        guard
            let row = try await rows(
                """
                SELECT t.trace_id, t.root_operation, t.start, t."end", t.span_count, t.error_count, t.sources, t.replay_of,
                    ARRAY(SELECT x.seq FROM trace_spans s, unnest(s.seqs) WITH ORDINALITY AS x(seq, n) WHERE s.trace = t.id ORDER BY s.first_seq, x.n)
                FROM trace_summaries t WHERE t.trace_id = \(traceId)
                """
            ).first
        else { return nil }
        let seqs = try row[8].decode([Int64].self).map { UInt64(bitPattern: $0) }
        return TraceLocation(seqs: seqs, summary: try TraceSummaryRecord(postgres: row))
    }

    public func searchTraces(_ search: TraceSearch, after: TraceCursor?, limit: Int) async throws -> [TraceSummaryRecord] {
        var conditions: [String] = []
        var bindings = PostgresBindings()
        func bind(_ value: some PostgresDynamicTypeEncodable) -> String {
            bindings.append(value)
            return "$\(bindings.count)"
        }
        if let after {
            // A row value: one range of the (start, trace_id) index.
            conditions.append("(t.start, t.trace_id) < (\(bind(after.start)), \(bind(after.traceId)))")
        }
        // A trace's sources are in its summary; its operations and stages in its spans, found
        // through the (operation, trace) and (stage, trace) indexes.
        if let source = search.source { conditions.append("jsonb_exists(t.sources::jsonb, \(bind(source)))") }
        if let operation = search.operation {
            conditions.append("EXISTS (SELECT 1 FROM operation_logs o WHERE o.operation = \(bind(operation)) AND o.trace = t.id)")
        }
        if let stage = search.stage {
            conditions.append("EXISTS (SELECT 1 FROM operation_logs o WHERE o.stage = \(bind(stage)) AND o.trace = t.id)")
        }
        if search.errorsOnly { conditions.append("t.error_count > 0") }
        if let minimum = search.minDurationMs { conditions.append("(t.\"end\" - t.start) >= \(bind(Int64(minimum * 1_000_000)))") }
        if let since = search.since { conditions.append("t.start >= \(bind(since))") }
        if let until = search.until { conditions.append("t.start <= \(bind(until))") }
        if let pattern = search.containsPattern {
            // SQLite's LIKE folds ASCII letters only; so does ILIKE under the "C" collation.
            let bound = bind(pattern)
            conditions.append(
                "(t.trace_id ILIKE \(bound) ESCAPE '\\' OR t.root_operation ILIKE \(bound) ESCAPE '\\' OR t.sources ILIKE \(bound) ESCAPE '\\')"
            )
        }
        let sql =
            "SELECT t.trace_id, t.root_operation, t.start, t.\"end\", t.span_count, t.error_count, t.sources, t.replay_of FROM trace_summaries t"
            + (conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND "))
            + " ORDER BY t.start DESC, t.trace_id DESC LIMIT \(bind(Int64(limit)))"
        return try await rows(PostgresQuery(unsafeSQL: sql, binds: bindings)).map(TraceSummaryRecord.init(postgres:))
    }

    public func replays(limit: Int) async throws -> [ReplayRecord] {
        try await rows("SELECT * FROM replays ORDER BY started_at DESC, new_trace DESC LIMIT \(Int64(limit))").map(ReplayRecord.init(postgres:))
    }

    public func runningReplays() async throws -> [ReplayRecord] {
        try await rows("SELECT * FROM replays WHERE status = \(ReplayStatus.running.rawValue) ORDER BY started_at, new_trace").map(
            ReplayRecord.init(postgres:)
        )
    }

    // MARK: GitHub operations

    public func githubOperation(id: String) async throws -> GitHubOperationRecord? {
        try await rows("SELECT * FROM github_operations WHERE id = \(id)").first.map(GitHubOperationRecord.init(postgres:))
    }

    public func githubOperation(idempotencyKey: String) async throws -> GitHubOperationRecord? {
        try await rows("SELECT * FROM github_operations WHERE idempotency_key = \(idempotencyKey) ORDER BY requested_seq LIMIT 1").first
            .map(GitHubOperationRecord.init(postgres:))
    }

    public func githubOperations(status: GitHubOperationRecord.Status?, limit: Int) async throws -> [GitHubOperationRecord] {
        try await rows(
            """
            SELECT * FROM github_operations WHERE \(status?.rawValue)::text IS NULL OR status = \(status?.rawValue)
            ORDER BY requested_seq DESC LIMIT \(Int64(limit))
            """
        ).map(GitHubOperationRecord.init(postgres:))
    }

    public func pendingGitHubOperations() async throws -> [GitHubPendingOperation] {
        try await rows(
            """
            SELECT id, kind, params, trace_id, requested_seq, requested_at, attempts, next_attempt_at
            FROM github_operations WHERE status = 'pending' ORDER BY requested_seq
            """
        ).compactMap { row -> GitHubPendingOperation? in
            guard let kind = GitHubOperationKind(rawValue: try row["kind"].decode(String.self)),
                let params = JSONText(try row["params"].decode(String.self)).jsonValue.objectValue
            else { return nil }
            return GitHubPendingOperation(
                id: try row["id"].decode(String.self),
                kind: kind,
                params: params,
                traceId: try row["trace_id"].decode(String.self),
                requestedSeq: UInt64(try row["requested_seq"].decode(Int64.self)),
                requestedAt: try row["requested_at"].decode(Int64.self),
                attempts: UInt32(clamping: try row["attempts"].decode(Int64.self)),
                notBefore: try row["next_attempt_at"].decode(Int64?.self) ?? 0,
                uncertain: true
            )
        }
    }

    // MARK: Signed checkpoints of the log

    public func latestLogCheckpoint() async throws -> StoredLogCheckpoint? {
        try await rows("SELECT * FROM log_checkpoints ORDER BY record_seq DESC LIMIT 1").first.map(StoredLogCheckpoint.init(postgres:))
    }

    public func logCheckpoints(fromSeq: UInt64, limit: Int) async throws -> [StoredLogCheckpoint] {
        try await rows(
            "SELECT * FROM log_checkpoints WHERE seq >= \(Int64(bitPattern: fromSeq)) ORDER BY record_seq LIMIT \(Int64(limit))"
        ).map(StoredLogCheckpoint.init(postgres:))
    }

    public func logCheckpoint(covering seq: UInt64) async throws -> StoredLogCheckpoint? {
        try await rows("SELECT * FROM log_checkpoints WHERE seq >= \(Int64(bitPattern: seq)) ORDER BY seq, record_seq LIMIT 1").first
            .map(StoredLogCheckpoint.init(postgres:))
    }
}

extension TaskRecord {
    init(postgres row: PostgresRandomAccessRow) throws {
        uuid = try row["uuid"].decode(String.self)
        orderId = try row["order_id"].decode(String.self)
        status = TaskStatus(rawValue: try row["status"].decode(String.self)) ?? .pending
        payload = JSONText(try row["payload"].decode(String.self))
        createdAt = try row["created_at"].decode(Int64.self)
        updatedAt = try row["updated_at"].decode(Int64.self)
        lastSeq = UInt64(try row["last_seq"].decode(Int64.self))
        createdSeq = UInt64(try row["created_seq"].decode(Int64.self))
    }
}

extension FollowupRecord {
    init(postgres row: PostgresRandomAccessRow) throws {
        id = try row["id"].decode(String.self)
        orderId = try row["order_id"].decode(String.self)
        type = try row["type"].decode(String.self)
        note = try row["note"].decode(String.self)
        impact = FollowupImpact(rawValue: try row["impact"].decode(String.self)) ?? .low
        createdAt = try row["created_at"].decode(Int64.self)
        seq = UInt64(try row["seq"].decode(Int64.self))
    }
}

extension TraceSummaryRecord {
    /// The first eight columns: trace_id, root_operation, start, "end", span_count, error_count,
    /// sources, replay_of.
    init(postgres row: PostgresRandomAccessRow) throws {
        self.init(
            traceId: try row[0].decode(String.self),
            rootOperation: try row[1].decode(String.self),
            start: try row[2].decode(Int64.self),
            end: try row[3].decode(Int64.self),
            spanCount: Int(try row[4].decode(Int64.self)),
            errorCount: Int(try row[5].decode(Int64.self)),
            sourcesJSON: try row[6].decode(String.self),
            replayOf: try row[7].decode(String?.self)
        )
    }
}

extension ReplayRecord {
    init(postgres row: PostgresRandomAccessRow) throws {
        self.init(
            newTrace: try row["new_trace"].decode(String.self),
            fromTrace: try row["from_trace"].decode(String.self),
            mode: ReplayMode(rawValue: try row["mode"].decode(String.self)) ?? .dryRun,
            speed: try row["speed"].decode(Double.self),
            status: ReplayStatus(rawValue: try row["status"].decode(String.self)),
            spans: try row["spans"].decode(Int64.self),
            startedAt: try row["started_at"].decode(Int64.self),
            completedAt: try row["completed_at"].decode(Int64?.self)
        )
    }
}

extension GitHubOperationRecord {
    init(postgres row: PostgresRandomAccessRow) throws {
        self.init(
            id: try row["id"].decode(String.self),
            kind: GitHubOperationKind(rawValue: try row["kind"].decode(String.self)) ?? .createIssue,
            status: Status(rawValue: try row["status"].decode(String.self)) ?? .pending,
            params: JSONText(try row["params"].decode(String.self)).jsonValue,
            attempts: Int(try row["attempts"].decode(Int64.self)),
            idempotencyKey: try row["idempotency_key"].decode(String.self),
            traceId: try row["trace_id"].decode(String.self),
            requestedAt: try row["requested_at"].decode(Int64.self),
            updatedAt: try row["updated_at"].decode(Int64.self)
        )
        result = try row["result"].decode(String?.self).map { JSONText($0).jsonValue }
        error = try row["error"].decode(String?.self).map { JSONText($0).jsonValue }
        nextAttemptAt = try row["next_attempt_at"].decode(Int64?.self)
    }
}

extension StoredLogCheckpoint {
    /// A row of `log_checkpoints`, written only from decoded events: its hex columns are well formed.
    init(postgres row: PostgresRandomAccessRow) throws {
        let next = try row["next_public_key"].decode(String?.self)
        self.init(
            checkpoint: LogCheckpoint(
                seq: UInt64(bitPattern: try row["seq"].decode(Int64.self)),
                chain: ChainValue(hex: try row["chain"].decode(String.self)) ?? .zero,
                at: try row["at"].decode(Int64.self),
                publicKey: Hex.decode(try row["public_key"].decode(String.self)) ?? [],
                nextPublicKey: next.flatMap(Hex.decode),
                signature: Hex.decode(try row["signature"].decode(String.self)) ?? []
            ),
            recordSeq: UInt64(bitPattern: try row["record_seq"].decode(Int64.self))
        )
    }
}
