import CustodyLog
import GRDB

/// Writes events into the projection tables, inside a transaction that ``SQLiteProjectionStore``
/// opened. Each event type changes its tables the same way every time, so applying the same
/// events in the same order gives the same rows whatever the batch boundaries — which is what
/// makes an incremental projection equal to a rebuild. (`trace_spans`, an index, is the one
/// table whose rows follow the batches; what it says — which seqs belong to which trace — does
/// not.)
struct ProjectionWriter {
    let db: Database
    /// The committed `trace_summaries` rows kept in memory (``TraceSummaryCache``).
    let cachedSummary: (String) -> TraceSummaryCache.Entry?
    /// The numbers of the traces not yet in `trace_keys` (``RecentTraces``).
    let recentNumber: (String) -> Int64?
    /// The custody graph's links of recent traces (``TraceLinksCache``); nil when the store keeps
    /// no graph.
    let cachedLinks: ((String) -> TraceLinks?)?

    init(
        _ db: Database,
        cachedSummary: @escaping (String) -> TraceSummaryCache.Entry?,
        recentNumber: @escaping (String) -> Int64?,
        cachedLinks: ((String) -> TraceLinks?)?
    ) {
        self.db = db
        self.cachedSummary = cachedSummary
        self.recentNumber = recentNumber
        self.cachedLinks = cachedLinks
    }

    /// What a batch changed in `trace_summaries`, for ``TraceSummaryCache`` once it commits.
    struct SummaryChanges {
        /// The rows as written.
        var written: [(traceId: String, entry: TraceSummaryCache.Entry)] = []
        /// Traces whose row changed in SQL (a replay started): their cached row is stale.
        var stale: Set<String> = []
        /// Traces numbered in this batch.
        var numbered: [(traceId: String, id: Int64)] = []
        /// Set when the transaction also wrote every trace up to this number to `trace_keys`.
        var keysIndexedThrough: Int64?
        /// The batch's traces' links for the custody graph, as committed.
        var links: [String: TraceLinks] = [:]
    }

    /// Applies a batch. The batch's other events are applied in seq order; then each trace of
    /// the batch gets one `trace_summaries` update (its spans folded in Swift and merged into the
    /// row) and one `trace_spans` row; then the spans go into `operation_logs` with their trace's
    /// number, and the batch's values into `value_batches`, and what they count into the custody
    /// graph. The rows come out exactly as if each span had been applied on its own, in seq order.
    /// `grouping` is `ProjectionBatch.SpanGrouping(events)`.
    func apply(_ events: [Event], grouping: ProjectionBatch.SpanGrouping) throws -> SummaryChanges {
        var changes = SummaryChanges()
        let traces = grouping.traces
        for index in events.indices where grouping.slot[index] < 0 {
            try apply(events[index])
            if case .replayStarted(let replay) = events[index].body { changes.stale.insert(replay.newTrace) }
        }
        guard !traces.isEmpty else { return changes }
        var insertSummary = try DirectStatement(db, sql: Self.insertSummary)
        var updateSummary = try DirectStatement(db, sql: Self.updateSummary)
        var stored = try StoredSummaryQueries(db)
        var replays = try DirectStatement(db, sql: "SELECT from_trace FROM replays WHERE new_trace = ?")
        var traceSpans = try DirectStatement(db, sql: "INSERT INTO trace_spans (trace, first_seq, seqs) VALUES (?, ?, ?)")
        changes.written.reserveCapacity(traces.count)
        var isNew: [Bool] = []
        isNew.reserveCapacity(traces.count)
        for trace in traces {
            let traceId = trace.part.summary.traceId
            // The row as last committed: from memory, unless a replay started in this batch
            // changed it in SQL; else from the database; nil for a new trace.
            let cached = changes.stale.contains(traceId) ? nil : cachedSummary(traceId)
            var row: TraceSummaryCache.Entry
            if let known = try cached ?? storedSummary(traceId, with: &stored) {
                row = known
                row.summary.merge(trace.part.summary)
                row.lastSeq = trace.part.lastSeq
                bind(row, to: &updateSummary)
                updateSummary.bind(row.id)
                try updateSummary.run(db)
                isNew.append(false)
            } else {
                row = trace.part
                replays.bind(traceId)
                row.summary.replayOf = try replays.step(db) ? replays.text(0) : nil
                replays.reset()
                bind(row, to: &insertSummary)
                try insertSummary.run(db)
                row.id = db.lastInsertedRowID
                changes.numbered.append((traceId, row.id))
                isNew.append(true)
            }
            traceSpans.bind(row.id)
            traceSpans.bind(trace.seqs[0])
            traceSpans.bind(trace.seqsJSON)
            try traceSpans.run(db)
            changes.written.append((traceId, row))
        }
        let numbers = changes.written.map(\.entry.id)
        if let cachedLinks {
            changes.links = try applyGraph(events, grouping: grouping, numbers: numbers, isNew: isNew, cachedLinks: cachedLinks).links
        }
        var spans = SpanInserter(db)
        for index in events.indices where grouping.slot[index] >= 0 {
            guard case .span(let span) = events[index].body else { continue }
            try spans.insert(
                span,
                seq: Int64(events[index].seq),
                ingestedAt: events[index].ingestedAt,
                isError: grouping.isError[index],
                trace: numbers[Int(grouping.slot[index])],
                at: index
            )
        }
        try spans.finish(events, grouping: grouping, numbers: numbers)
        var valueBatch = try DirectStatement(
            db,
            sql: "INSERT OR IGNORE INTO value_batches (kind, value, first_seq, last_seq) VALUES (?, ?, ?, ?)"
        )
        for (kind, value) in grouping.values {
            valueBatch.bind(kind)
            valueBatch.bind(value)
            valueBatch.bind(grouping.firstSpanSeq)
            valueBatch.bind(grouping.lastSpanSeq)
            try valueBatch.run(db)
        }
        return changes
    }

    /// Rows of `operation_logs` per INSERT statement: one statement carrying many rows is faster
    /// than one per row.
    static let rowsPerInsert = 32
    static let spanColumns =
        "INSERT INTO operation_logs (seq, trace_id, span_id, parent_span_id, source, stage, operation, task_uuid, duration_ms, timestamp, ingested_at, is_error, trace) VALUES "
    static let spanRow = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    static let insertManySpans = spanColumns + Array(repeating: spanRow, count: rowsPerInsert).joined(separator: ", ")
    static let insertOneSpan = spanColumns + spanRow

    /// Inserts spans into `operation_logs`, ``rowsPerInsert`` rows per statement: rows are bound as
    /// they come, and the last few of a batch (fewer than a statement holds) one at a time.
    private struct SpanInserter {
        let db: Database
        private var many: DirectStatement?
        /// The events (by index) whose rows are bound in `many` and not yet inserted.
        private var bound: [Int] = []

        init(_ db: Database) {
            self.db = db
        }

        mutating func insert(_ span: Span, seq: Int64, ingestedAt: Int64, isError: Bool, trace: Int64, at index: Int) throws {
            if many == nil { many = try DirectStatement(db, sql: ProjectionWriter.insertManySpans) }
            Self.bind(span, seq: seq, ingestedAt: ingestedAt, isError: isError, trace: trace, to: &many!)
            bound.append(index)
            if bound.count == ProjectionWriter.rowsPerInsert {
                try many!.run(db)
                bound.removeAll(keepingCapacity: true)
            }
        }

        /// Inserts the rows bound but not inserted yet.
        mutating func finish(
            _ events: [Event],
            grouping: ProjectionBatch.SpanGrouping,
            numbers: [Int64]
        ) throws {
            guard !bound.isEmpty else { return }
            many!.reset()
            var one = try DirectStatement(db, sql: ProjectionWriter.insertOneSpan)
            for index in bound {
                guard case .span(let span) = events[index].body else { continue }
                Self.bind(
                    span,
                    seq: Int64(events[index].seq),
                    ingestedAt: events[index].ingestedAt,
                    isError: grouping.isError[index],
                    trace: numbers[Int(grouping.slot[index])],
                    to: &one
                )
                try one.run(db)
            }
            bound.removeAll()
        }

        static func bind(_ span: Span, seq: Int64, ingestedAt: Int64, isError: Bool, trace: Int64, to insert: inout DirectStatement) {
            insert.bind(seq)
            insert.bind(span.traceId)
            insert.bind(span.spanId)
            insert.bind(span.parentSpanId)
            insert.bind(span.source)
            insert.bind(span.stage)
            insert.bind(span.operation)
            insert.bind(span.taskUUID)
            insert.bind(span.durationMs)
            insert.bind(span.timestamp)
            insert.bind(ingestedAt)
            insert.bind(isError ? 1 : 0)
            insert.bind(trace)
        }
    }

    /// `[1,2,3]`: the seqs of `trace_spans.seqs`.
    static func jsonArray(_ seqs: [Int64]) -> String {
        var text = "["
        text.reserveCapacity(seqs.count * 9 + 2)
        for (index, seq) in seqs.enumerated() {
            if index > 0 { text.append(",") }
            text.append(String(seq))
        }
        text.append("]")
        return text
    }

    static let insertSummary = """
        INSERT INTO trace_summaries (trace_key, trace_id, root_operation, start, "end", span_count, error_count, sources, replay_of, last_seq)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        """
    static let updateSummary = """
        UPDATE trace_summaries SET trace_key = ?, trace_id = ?, root_operation = ?, start = ?, "end" = ?, span_count = ?, error_count = ?,
            sources = ?, replay_of = ?, last_seq = ?
        WHERE id = ?
        """
    /// The two ways to a stored row: by number (a recent trace), or by key through `trace_keys`.
    private struct StoredSummaryQueries {
        static let columns = #"s.id, s.root_operation, s.start, s."end", s.span_count, s.error_count, s.sources, s.replay_of, s.last_seq"#
        var byNumber: DirectStatement
        var byKey: DirectStatement

        init(_ db: Database) throws {
            byNumber = try DirectStatement(db, sql: "SELECT \(Self.columns) FROM trace_summaries s WHERE s.id = ?")
            byKey = try DirectStatement(
                db,
                sql: "SELECT \(Self.columns) " + RecentTraces.byKey
            )
        }
    }

    /// Binds a trace's row (its columns after `id`, in table order).
    private func bind(_ row: TraceSummaryCache.Entry, to statement: inout DirectStatement) {
        let summary = row.summary
        statement.bind(TraceKey.of(summary.traceId))
        statement.bind(summary.traceId)
        statement.bind(summary.rootOperation)
        statement.bind(summary.start)
        statement.bind(summary.end)
        statement.bind(Int64(summary.spanCount))
        statement.bind(Int64(summary.errorCount))
        statement.bind(summary.sourcesJSON)
        statement.bind(summary.replayOf)
        statement.bind(row.lastSeq)
    }

    /// A trace's row as the database has it.
    private func storedSummary(_ traceId: String, with queries: inout StoredSummaryQueries) throws -> TraceSummaryCache.Entry? {
        if let number = recentNumber(traceId) {
            queries.byNumber.bind(number)
            return try read(traceId, with: &queries.byNumber)
        }
        queries.byKey.bind(TraceKey.of(traceId))
        queries.byKey.bind(traceId)
        return try read(traceId, with: &queries.byKey)
    }

    private func read(_ traceId: String, with select: inout DirectStatement) throws -> TraceSummaryCache.Entry? {
        defer { select.reset() }
        guard try select.step(db) else { return nil }
        let summary = TraceSummaryRecord(
            traceId: traceId,
            rootOperation: select.text(1) ?? "",
            start: select.int64(2),
            end: select.int64(3),
            spanCount: Int(select.int64(4)),
            errorCount: Int(select.int64(5)),
            sourcesJSON: select.text(6) ?? "[]",
            replayOf: select.text(7)
        )
        return TraceSummaryCache.Entry(id: select.int64(0), summary: summary, lastSeq: select.int64(8))
    }

    /// The number of a trace that has a row (nil when it has none).
    private func traceNumber(_ traceId: String) throws -> Int64? {
        if let number = recentNumber(traceId) { return number }
        return try Int64.fetchOne(
            db.cachedStatement(
                sql: "SELECT s.id " + RecentTraces.byKey
            ),
            arguments: [TraceKey.of(traceId), traceId]
        )
    }

    private func run(_ sql: String, _ arguments: StatementArguments) throws {
        try db.cachedStatement(sql: sql).execute(arguments: arguments)
    }

    func apply(_ event: Event) throws {
        let seq = Int64(event.seq)
        let at = event.ingestedAt
        switch event.body {
        case .span:
            // Spans are inserted in chunks by apply(_ events:).
            break
        case .taskCreated(let task):
            try run(
                """
                INSERT OR IGNORE INTO tasks (uuid, order_id, status, payload, created_at, updated_at, created_seq, last_seq)
                VALUES (?, ?, 'pending', ?, ?, ?, ?, ?)
                """,
                [task.uuid, task.orderId, task.payload.description, at, at, seq, seq]
            )
        case .taskStatusChanged(let change):
            try run(
                "UPDATE tasks SET status = ?, updated_at = ?, last_seq = ? WHERE uuid = ?",
                [change.status.rawValue, at, seq, change.uuid]
            )
        case .factoryErrorRecorded(let error):
            try run(
                """
                INSERT OR IGNORE INTO error_events (error_id, source, message, order_id, task_uuid, error_type, payload, created_at, seq)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
                [error.errorId, error.source, error.message, error.orderId, error.taskUUID, error.errorType, error.payload?.description, at, seq]
            )
        case .followupSubmitted(let followup):
            try run(
                "INSERT OR IGNORE INTO followups (id, order_id, type, note, impact, created_at, seq) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [followup.id, followup.orderId, followup.type, followup.note, followup.impact.rawValue, at, seq]
            )
        case .deliveryFinalized(let report):
            try run(
                "INSERT OR REPLACE INTO delivery_reports (order_id, revision, report, finalized_at, seq) VALUES (?, ?, ?, ?, ?)",
                [report.orderId, Int64(report.revision), report.report.description, at, seq]
            )
        case .githubRequested(let request):
            try run(
                """
                INSERT OR IGNORE INTO github_operations (id, kind, status, params, attempts, result, error, requested_at, updated_at, last_seq,
                    idempotency_key, trace_id, requested_seq, next_attempt_at)
                VALUES (?, ?, 'pending', ?, 0, NULL, NULL, ?, ?, ?, ?, ?, ?, NULL)
                """,
                [
                    request.operationId, request.kind.rawValue, request.params.description, at, at, seq, request.idempotencyKey,
                    request.traceId, seq,
                ]
            )
        case .githubAttemptFailed(let failed):
            try run(
                """
                UPDATE github_operations SET attempts = ?, error = ?, next_attempt_at = ?, updated_at = ?, last_seq = ?
                WHERE id = ? AND status = 'pending'
                """,
                [Int64(failed.attempt), failed.error.description, failed.retryAt, at, seq, failed.operationId]
            )
        case .githubSucceeded(let finished):
            try run(
                "UPDATE github_operations SET status = 'succeeded', attempts = ?, result = ?, error = NULL, next_attempt_at = NULL, updated_at = ?, last_seq = ? WHERE id = ?",
                [Int64(finished.attempt), finished.outcome.description, at, seq, finished.operationId]
            )
        case .githubFailed(let finished):
            try run(
                "UPDATE github_operations SET status = 'failed', attempts = ?, error = ?, next_attempt_at = NULL, updated_at = ?, last_seq = ? WHERE id = ?",
                [Int64(finished.attempt), finished.outcome.description, at, seq, finished.operationId]
            )
        case .replayStarted(let replay):
            try run(
                """
                INSERT OR IGNORE INTO replays (new_trace, from_trace, mode, speed, spans, status, started_at, completed_at, last_seq)
                VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?)
                """,
                [replay.newTrace, replay.fromTrace, replay.mode.rawValue, replay.speed, Int64(replay.spans), replay.status.rawValue, at, seq]
            )
            // The replay the replays table kept (the first one started for this trace).
            try run(
                "UPDATE trace_summaries SET replay_of = (SELECT from_trace FROM replays WHERE new_trace = ?1) WHERE id = ?2",
                [replay.newTrace, try traceNumber(replay.newTrace)]
            )
        case .replayCompleted(let replay):
            try run(
                "UPDATE replays SET status = ?, spans = ?, completed_at = ?, last_seq = ? WHERE new_trace = ?",
                [replay.status.rawValue, Int64(replay.spans), at, seq, replay.newTrace]
            )
        case .logLoss(let loss):
            try run(
                """
                INSERT OR IGNORE INTO log_losses (seq, first_seq, last_seq, segment, byte_offset, length, side_file, reason, recorded_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
                [
                    seq, Int64(bitPattern: loss.firstSeq), Int64(bitPattern: loss.lastSeq), loss.segment, loss.offset, loss.length,
                    loss.sideFile, loss.reason, loss.recordedAt,
                ]
            )
        case .logCheckpoint(let checkpoint):
            try run(
                """
                INSERT OR IGNORE INTO log_checkpoints (record_seq, seq, chain, at, key_id, public_key, next_public_key, signature)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                """,
                [
                    seq, Int64(bitPattern: checkpoint.seq), checkpoint.chain.hex, checkpoint.at, checkpoint.keyID,
                    Hex.encode(checkpoint.publicKey), checkpoint.nextPublicKey.map { Hex.encode($0) }, Hex.encode(checkpoint.signature),
                ]
            )
        case .logRetention(let retention):
            try run(
                "INSERT OR IGNORE INTO log_retentions (seq, first_seq, last_seq, chain, snapshot, bytes, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    seq, Int64(bitPattern: retention.firstSeq), Int64(bitPattern: retention.lastSeq), retention.chain.hex, retention.snapshot,
                    retention.bytes, retention.recordedAt,
                ]
            )
        }
    }
}
