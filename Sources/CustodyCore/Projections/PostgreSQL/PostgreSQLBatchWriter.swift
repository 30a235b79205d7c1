import CustodyLog
import Logging
import NIOCore
import PostgresNIO

/// Writes one batch into the PostgreSQL projection tables, inside the transaction
/// ``PostgreSQLWriter`` opened: the same rows, event for event, as ``ProjectionWriter`` writes
/// into SQLite (docs/projections.md), whatever the batch boundaries.
///
/// In order: the guarded checkpoint; the batch's events other than spans, in seq order; the
/// traces' rows (the ones not in memory read in one query, merged in Swift, written back by one
/// multi-row UPDATE and one multi-row INSERT); then `trace_spans` and `operation_logs` by multi-row INSERTs.
struct PostgreSQLBatchWriter {
    let connection: PostgresConnection
    let logger: Logger
    let cache: TraceSummaryCache

    /// Binds per statement: PostgreSQL's limit is 65,535.
    static let maximumBinds = 65_535

    func apply(_ batch: ProjectionBatch) async throws -> ProjectionWriter.SummaryChanges {
        let events = batch.events
        let grouping = batch.grouping
        // Nothing of this batch may be applied yet: the checkpoint is still before its first seq.
        let first = Int64(events.first?.seq ?? batch.checkpointSeq)
        let moved = try await connection.query(
            """
            UPDATE projection_checkpoint SET applied_seq = \(Int64(batch.checkpointSeq)), applied_at = \(batch.checkpointTime)
            WHERE name = \(SQLiteProjectionStore.checkpointName) AND applied_seq < \(first) RETURNING applied_seq
            """,
            logger: logger
        ).collect()
        guard !moved.isEmpty else {
            throw CoreError(
                .conflict,
                "the projections in PostgreSQL have already applied seq \(first): another node applied this batch (it took over as the writer)"
            )
        }
        var changes = ProjectionWriter.SummaryChanges()
        for index in events.indices where grouping.slot[index] < 0 {
            try await apply(events[index])
            if case .replayStarted(let replay) = events[index].body { changes.stale.insert(replay.newTrace) }
        }
        let traces = grouping.traces
        guard !traces.isEmpty else { return changes }

        // The rows as last committed: from memory, unless a replay started in this batch changed
        // them in SQL; else from the table, in one query.
        var known: [String: TraceSummaryCache.Entry] = [:]
        var unknown: [String] = []
        for trace in traces {
            let traceId = trace.part.summary.traceId
            if !changes.stale.contains(traceId), let entry = cache.entry(traceId) {
                known[traceId] = entry
            } else {
                unknown.append(traceId)
            }
        }
        var replayOf: [String: String] = [:]
        if !unknown.isEmpty {
            for row in try await connection.query(
                """
                SELECT id, trace_id, root_operation, start, "end", span_count, error_count, sources, replay_of, last_seq
                FROM trace_summaries WHERE trace_id = ANY(\(unknown))
                """,
                logger: logger
            ).collect() {
                let entry = try TraceSummaryCache.Entry(postgres: row.makeRandomAccess())
                known[entry.summary.traceId] = entry
            }
            let new = unknown.filter { known[$0] == nil }
            if !new.isEmpty {
                for row in try await connection.query(
                    "SELECT new_trace, from_trace FROM replays WHERE new_trace = ANY(\(new))",
                    logger: logger
                ).collect() {
                    let (newTrace, fromTrace) = try row.decode((String, String).self)
                    replayOf[newTrace] = fromTrace
                }
            }
        }
        var updated: [TraceSummaryCache.Entry] = []
        var inserted: [TraceSummaryCache.Entry] = []
        for trace in traces {
            let traceId = trace.part.summary.traceId
            if var row = known[traceId] {
                row.summary.merge(trace.part.summary)
                row.lastSeq = trace.part.lastSeq
                updated.append(row)
            } else {
                var row = trace.part
                row.summary.replayOf = replayOf[traceId]
                inserted.append(row)
            }
        }
        try await update(updated)
        let numbers = try await insert(inserted)
        changes.written.reserveCapacity(traces.count)
        var traceNumbers: [Int64] = []
        traceNumbers.reserveCapacity(traces.count)
        var updatedIndex = 0
        var insertedIndex = 0
        for trace in traces {
            let traceId = trace.part.summary.traceId
            var row: TraceSummaryCache.Entry
            if known[traceId] != nil {
                row = updated[updatedIndex]
                updatedIndex += 1
            } else {
                row = inserted[insertedIndex]
                insertedIndex += 1
                guard let number = numbers[traceId] else {
                    throw CoreError(.internalError, "PostgreSQL returned no number for the new trace \(traceId)")
                }
                row.id = number
                changes.numbered.append((traceId, number))
            }
            traceNumbers.append(row.id)
            changes.written.append((traceId, row))
        }
        try await insertTraceSpans(traces, numbers: traceNumbers)
        try await insertSpans(events, grouping: grouping, numbers: traceNumbers)
        return changes
    }

    // MARK: Traces

    static let summaryColumns = 9

    /// One multi-row UPDATE per chunk of known traces.
    private func update(_ rows: [TraceSummaryCache.Entry]) async throws {
        let perStatement = Self.maximumBinds / Self.summaryColumns
        var start = 0
        while start < rows.count {
            let chunk = rows[start..<min(rows.count, start + perStatement)]
            var bindings = PostgresBindings(capacity: chunk.count * Self.summaryColumns)
            var values: [String] = []
            values.reserveCapacity(chunk.count)
            for row in chunk {
                let base = bindings.count
                bindings.append(row.id)
                Self.bind(row, to: &bindings)
                values.append(
                    "($\(base + 1)::bigint, $\(base + 2)::text, $\(base + 3)::bigint, $\(base + 4)::bigint, $\(base + 5)::bigint, $\(base + 6)::bigint, $\(base + 7)::text, $\(base + 8)::text, $\(base + 9)::bigint)"
                )
            }
            let sql = """
                UPDATE trace_summaries AS t SET root_operation = v.root_operation, start = v.start, "end" = v."end", span_count = v.span_count,
                    error_count = v.error_count, sources = v.sources, replay_of = v.replay_of, last_seq = v.last_seq
                FROM (VALUES \(values.joined(separator: ", "))) AS v(id, root_operation, start, "end", span_count, error_count, sources, replay_of, last_seq)
                WHERE t.id = v.id
                """
            _ = try await connection.query(PostgresQuery(unsafeSQL: sql, binds: bindings), logger: logger)
            start += chunk.count
        }
    }

    /// One multi-row INSERT per chunk of new traces; returns their numbers by trace id.
    private func insert(_ rows: [TraceSummaryCache.Entry]) async throws -> [String: Int64] {
        var numbers: [String: Int64] = [:]
        let columns = Self.summaryColumns + 1
        let perStatement = Self.maximumBinds / columns
        var start = 0
        while start < rows.count {
            let chunk = rows[start..<min(rows.count, start + perStatement)]
            var bindings = PostgresBindings(capacity: chunk.count * columns)
            var values: [String] = []
            values.reserveCapacity(chunk.count)
            for row in chunk {
                let base = bindings.count
                bindings.append(TraceKey.of(row.summary.traceId))
                bindings.append(row.summary.traceId)
                Self.bind(row, to: &bindings)
                values.append("(" + (1...columns).map { "$\(base + $0)" }.joined(separator: ", ") + ")")
            }
            let sql = """
                INSERT INTO trace_summaries (trace_key, trace_id, root_operation, start, "end", span_count, error_count, sources, replay_of, last_seq)
                VALUES \(values.joined(separator: ", ")) RETURNING id, trace_id
                """
            for row in try await connection.query(PostgresQuery(unsafeSQL: sql, binds: bindings), logger: logger).collect() {
                let (id, traceId) = try row.decode((Int64, String).self)
                numbers[traceId] = id
            }
            start += chunk.count
        }
        return numbers
    }

    /// Binds a trace row's columns from `root_operation` to `last_seq`, in table order.
    private static func bind(_ row: TraceSummaryCache.Entry, to bindings: inout PostgresBindings) {
        let summary = row.summary
        bindings.append(summary.rootOperation)
        bindings.append(summary.start)
        bindings.append(summary.end)
        bindings.append(Int64(summary.spanCount))
        bindings.append(Int64(summary.errorCount))
        bindings.append(JSONValue.array(summary.sources.map(JSONValue.string)).jsonText.description)
        bindings.append(summary.replayOf)
        bindings.append(row.lastSeq)
    }

    // MARK: Spans

    /// Inserts `count` rows of `columns` into `table`, as many per statement as the binds allow.
    /// (Not COPY: postgres-nio 1.33's `copyFrom` can hang for good when the server goes away in
    /// the middle of one.)
    private func insert(
        into table: String,
        _ columns: [String],
        count: Int,
        bind: (Int, inout PostgresBindings) -> Void
    ) async throws {
        let perStatement = Self.maximumBinds / columns.count
        let head = "INSERT INTO \(table) (\(columns.joined(separator: ", "))) VALUES "
        var start = 0
        while start < count {
            let end = min(count, start + perStatement)
            var bindings = PostgresBindings(capacity: (end - start) * columns.count)
            var sql = head
            sql.reserveCapacity(head.utf8.count + (end - start) * columns.count * 7)
            for row in start..<end {
                let base = bindings.count
                bind(row, &bindings)
                sql += row == start ? "(" : ", ("
                for column in 1...columns.count {
                    if column > 1 { sql += ", " }
                    sql += "$\(base + column)"
                }
                sql += ")"
            }
            _ = try await connection.query(PostgresQuery(unsafeSQL: sql, binds: bindings), logger: logger)
            start = end
        }
    }

    private func insertTraceSpans(_ traces: [ProjectionBatch.SpanGrouping.TraceInBatch], numbers: [Int64]) async throws {
        try await insert(into: "trace_spans", ["trace", "first_seq", "seqs"], count: traces.count) { index, bindings in
            bindings.append(numbers[index])
            bindings.append(traces[index].seqs[0])
            bindings.append(traces[index].seqs)
        }
    }

    static let spanColumns = [
        "seq", "trace_id", "span_id", "parent_span_id", "source", "stage", "operation", "task_uuid", "duration_ms", "timestamp", "ingested_at",
        "is_error", "trace",
    ]

    private func insertSpans(_ events: [Event], grouping: ProjectionBatch.SpanGrouping, numbers: [Int64]) async throws {
        let spans = events.indices.filter { grouping.slot[$0] >= 0 }
        try await insert(into: "operation_logs", Self.spanColumns, count: spans.count) { row, bindings in
            let index = spans[row]
            guard case .span(let span) = events[index].body else { return }
            bindings.append(Int64(events[index].seq))
            bindings.append(span.traceId)
            bindings.append(span.spanId)
            bindings.append(span.parentSpanId)
            bindings.append(span.source)
            bindings.append(span.stage)
            bindings.append(span.operation)
            bindings.append(span.taskUUID)
            bindings.append(span.durationMs)
            bindings.append(span.timestamp)
            bindings.append(events[index].ingestedAt)
            bindings.append(Int64(grouping.isError[index] ? 1 : 0))
            bindings.append(numbers[Int(grouping.slot[index])])
        }
    }

    // MARK: Events other than spans

    private func run(_ query: PostgresQuery) async throws {
        _ = try await connection.query(query, logger: logger)
    }

    func apply(_ event: Event) async throws {
        let seq = Int64(event.seq)
        let at = event.ingestedAt
        switch event.body {
        case .span:
            break
        case .taskCreated(let task):
            try await run(
                """
                INSERT INTO tasks (uuid, order_id, status, payload, created_at, updated_at, created_seq, last_seq)
                VALUES (\(task.uuid), \(task.orderId), 'pending', \(task.payload.description), \(at), \(at), \(seq), \(seq)) ON CONFLICT DO NOTHING
                """
            )
        case .taskStatusChanged(let change):
            try await run(
                "UPDATE tasks SET status = \(change.status.rawValue), updated_at = \(at), last_seq = \(seq) WHERE uuid = \(change.uuid)"
            )
        case .factoryErrorRecorded(let error):
            try await run(
                """
                INSERT INTO error_events (error_id, source, message, order_id, task_uuid, error_type, payload, created_at, seq)
                VALUES (\(error.errorId), \(error.source), \(error.message), \(error.orderId), \(error.taskUUID), \(error.errorType),
                    \(error.payload?.description), \(at), \(seq))
                ON CONFLICT DO NOTHING
                """
            )
        case .followupSubmitted(let followup):
            try await run(
                """
                INSERT INTO followups (id, order_id, type, note, impact, created_at, seq)
                VALUES (\(followup.id), \(followup.orderId), \(followup.type), \(followup.note), \(followup.impact.rawValue), \(at), \(seq))
                ON CONFLICT DO NOTHING
                """
            )
        case .deliveryFinalized(let report):
            try await run(
                """
                INSERT INTO delivery_reports (order_id, revision, report, finalized_at, seq)
                VALUES (\(report.orderId), \(Int64(report.revision)), \(report.report.description), \(at), \(seq))
                ON CONFLICT (order_id, revision) DO UPDATE SET report = excluded.report, finalized_at = excluded.finalized_at, seq = excluded.seq
                """
            )
        case .githubRequested(let request):
            try await run(
                """
                INSERT INTO github_operations (id, kind, status, params, attempts, result, error, requested_at, updated_at, last_seq,
                    idempotency_key, trace_id, requested_seq, next_attempt_at)
                VALUES (\(request.operationId), \(request.kind.rawValue), 'pending', \(request.params.description), 0, NULL, NULL, \(at), \(at),
                    \(seq), \(request.idempotencyKey), \(request.traceId), \(seq), NULL)
                ON CONFLICT DO NOTHING
                """
            )
        case .githubAttemptFailed(let failed):
            try await run(
                """
                UPDATE github_operations SET attempts = \(Int64(failed.attempt)), error = \(failed.error.description),
                    next_attempt_at = \(failed.retryAt), updated_at = \(at), last_seq = \(seq)
                WHERE id = \(failed.operationId) AND status = 'pending'
                """
            )
        case .githubSucceeded(let finished):
            try await run(
                """
                UPDATE github_operations SET status = 'succeeded', attempts = \(Int64(finished.attempt)), result = \(finished.outcome.description),
                    error = NULL, next_attempt_at = NULL, updated_at = \(at), last_seq = \(seq)
                WHERE id = \(finished.operationId)
                """
            )
        case .githubFailed(let finished):
            try await run(
                """
                UPDATE github_operations SET status = 'failed', attempts = \(Int64(finished.attempt)), error = \(finished.outcome.description),
                    next_attempt_at = NULL, updated_at = \(at), last_seq = \(seq)
                WHERE id = \(finished.operationId)
                """
            )
        case .replayStarted(let replay):
            try await run(
                """
                INSERT INTO replays (new_trace, from_trace, mode, speed, spans, status, started_at, completed_at, last_seq)
                VALUES (\(replay.newTrace), \(replay.fromTrace), \(replay.mode.rawValue), \(replay.speed), \(Int64(replay.spans)),
                    \(replay.status.rawValue), \(at), NULL, \(seq))
                ON CONFLICT DO NOTHING
                """
            )
            // The replay the replays table kept (the first one started for this trace).
            try await run(
                "UPDATE trace_summaries SET replay_of = (SELECT from_trace FROM replays WHERE new_trace = \(replay.newTrace)) WHERE trace_id = \(replay.newTrace)"
            )
        case .replayCompleted(let replay):
            try await run(
                """
                UPDATE replays SET status = \(replay.status.rawValue), spans = \(Int64(replay.spans)), completed_at = \(at), last_seq = \(seq)
                WHERE new_trace = \(replay.newTrace)
                """
            )
        case .logLoss(let loss):
            try await run(
                """
                INSERT INTO log_losses (seq, first_seq, last_seq, segment, byte_offset, length, side_file, reason, recorded_at)
                VALUES (\(seq), \(Int64(bitPattern: loss.firstSeq)), \(Int64(bitPattern: loss.lastSeq)), \(loss.segment), \(loss.offset),
                    \(loss.length), \(loss.sideFile), \(loss.reason), \(loss.recordedAt))
                ON CONFLICT DO NOTHING
                """
            )
        case .logCheckpoint(let checkpoint):
            try await run(
                """
                INSERT INTO log_checkpoints (record_seq, seq, chain, at, key_id, public_key, next_public_key, signature)
                VALUES (\(seq), \(Int64(bitPattern: checkpoint.seq)), \(checkpoint.chain.hex), \(checkpoint.at), \(checkpoint.keyID),
                    \(Hex.encode(checkpoint.publicKey)), \(checkpoint.nextPublicKey.map { Hex.encode($0) }), \(Hex.encode(checkpoint.signature)))
                ON CONFLICT DO NOTHING
                """
            )
        case .logRetention(let retention):
            try await run(
                """
                INSERT INTO log_retentions (seq, first_seq, last_seq, chain, snapshot, bytes, recorded_at)
                VALUES (\(seq), \(Int64(bitPattern: retention.firstSeq)), \(Int64(bitPattern: retention.lastSeq)), \(retention.chain.hex),
                    \(retention.snapshot), \(retention.bytes), \(retention.recordedAt))
                ON CONFLICT DO NOTHING
                """
            )
        }
    }
}

extension TraceSummaryCache.Entry {
    /// A `trace_summaries` row of PostgreSQL: id, trace_id, root_operation, start, "end",
    /// span_count, error_count, sources, replay_of, last_seq.
    init(postgres row: PostgresRandomAccessRow) throws {
        self.init(
            id: try row[0].decode(Int64.self),
            summary: TraceSummaryRecord(
                traceId: try row[1].decode(String.self),
                rootOperation: try row[2].decode(String.self),
                start: try row[3].decode(Int64.self),
                end: try row[4].decode(Int64.self),
                spanCount: Int(try row[5].decode(Int64.self)),
                errorCount: Int(try row[6].decode(Int64.self)),
                sourcesJSON: try row[7].decode(String.self),
                replayOf: try row[8].decode(String?.self)
            ),
            lastSeq: try row[9].decode(Int64.self)
        )
    }
}
