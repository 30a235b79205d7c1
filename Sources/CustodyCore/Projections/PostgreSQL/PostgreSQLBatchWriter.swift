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
/// UPDATE and one INSERT); then `trace_spans` and `operation_logs`, one INSERT each — every one of
/// them a statement over column arrays.
struct PostgreSQLBatchWriter {
    let connection: PostgresConnection
    let logger: Logger
    let cache: TraceSummaryCache
    /// The custody graph's links of recent traces (``TraceLinksCache``).
    let links: TraceLinksCache

    /// Binds per statement: PostgreSQL's limit is 65,535 (a state snapshot's rows are copied in
    /// by multi-row VALUES lists).
    static let maximumBinds = 65_535

    func apply(_ batch: ProjectionBatch) async throws -> ProjectionWriter.SummaryChanges {
        let events = batch.events
        let grouping = batch.grouping
        // Nothing of this batch may be applied yet: the checkpoint is still before its first seq.
        let first = Int64(events.first?.seq ?? batch.checkpointSeq)
        let moved = try await connection.queryIfOpen(
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
            for row in try await connection.queryIfOpen(
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
                for row in try await connection.queryIfOpen(
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
        let isNew = traces.map { known[$0.part.summary.traceId] == nil }
        changes.links = try await applyGraph(batch, numbers: traceNumbers, isNew: isNew, links: links).links
        try await insertTraceSpans(traces, numbers: traceNumbers)
        try await insertSpans(events, grouping: grouping, numbers: traceNumbers)
        return changes
    }

    // MARK: Traces and spans
    //
    // Rows go in as one array per column, unnested by PostgreSQL (`unnest($1::bigint[], …)`):
    // a few binds and one statement text whatever the number of rows, where a multi-row VALUES
    // list costs a placeholder, a bind and its description per value (measured: 47k events/s
    // with VALUES, docs/benchmarks.md). A nullable column comes with a flag column saying which
    // rows hold NULL (postgres-nio encodes no arrays of optionals).

    /// One UPDATE of the known traces' rows.
    private func update(_ rows: [TraceSummaryCache.Entry]) async throws {
        guard !rows.isEmpty else { return }
        let columns = SummaryColumns(rows)
        var bindings = PostgresBindings(capacity: 10)
        bindings.append(rows.map(\.id))
        columns.bind(to: &bindings)
        _ = try await connection.queryIfOpen(
            PostgresQuery(
                unsafeSQL: """
                    UPDATE trace_summaries AS t SET root_operation = v.root_operation, start = v.start, "end" = v."end",
                        span_count = v.span_count, error_count = v.error_count, sources = v.sources,
                        replay_of = CASE WHEN v.no_replay THEN NULL ELSE v.replay_of END, last_seq = v.last_seq
                    FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[], $7::text[], $8::text[],
                        $9::bool[], $10::bigint[])
                        AS v(id, root_operation, start, "end", span_count, error_count, sources, replay_of, no_replay, last_seq)
                    WHERE t.id = v.id
                    """,
                binds: bindings
            ),
            logger: logger
        )
    }

    /// One INSERT of the new traces' rows; returns their numbers by trace id.
    private func insert(_ rows: [TraceSummaryCache.Entry]) async throws -> [String: Int64] {
        guard !rows.isEmpty else { return [:] }
        let columns = SummaryColumns(rows)
        var bindings = PostgresBindings(capacity: 11)
        bindings.append(rows.map { TraceKey.of($0.summary.traceId) })
        bindings.append(rows.map(\.summary.traceId))
        columns.bind(to: &bindings)
        var numbers: [String: Int64] = [:]
        numbers.reserveCapacity(rows.count)
        for row in try await connection.queryIfOpen(
            PostgresQuery(
                unsafeSQL: """
                    INSERT INTO trace_summaries (trace_key, trace_id, root_operation, start, "end", span_count, error_count, sources, replay_of,
                        last_seq)
                    SELECT trace_key, trace_id, root_operation, start, "end", span_count, error_count, sources,
                        CASE WHEN no_replay THEN NULL ELSE replay_of END, last_seq
                    FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[], $8::text[],
                        $9::text[], $10::bool[], $11::bigint[])
                        AS v(trace_key, trace_id, root_operation, start, "end", span_count, error_count, sources, replay_of, no_replay, last_seq)
                    RETURNING id, trace_id
                    """,
                binds: bindings
            ),
            logger: logger
        ).collect() {
            let (id, traceId) = try row.decode((Int64, String).self)
            numbers[traceId] = id
        }
        return numbers
    }

    /// The columns of trace rows from `root_operation` to `last_seq`, as arrays.
    private struct SummaryColumns {
        var rootOperation: [String] = []
        var start: [Int64] = []
        var end: [Int64] = []
        var spanCount: [Int64] = []
        var errorCount: [Int64] = []
        var sources: [String] = []
        var replayOf: [String] = []
        var noReplay: [Bool] = []
        var lastSeq: [Int64] = []

        init(_ rows: [TraceSummaryCache.Entry]) {
            for row in rows {
                let summary = row.summary
                rootOperation.append(summary.rootOperation)
                start.append(summary.start)
                end.append(summary.end)
                spanCount.append(Int64(summary.spanCount))
                errorCount.append(Int64(summary.errorCount))
                sources.append(summary.sourcesJSON)
                replayOf.append(summary.replayOf ?? "")
                noReplay.append(summary.replayOf == nil)
                lastSeq.append(row.lastSeq)
            }
        }

        func bind(to bindings: inout PostgresBindings) {
            bindings.append(rootOperation)
            bindings.append(start)
            bindings.append(end)
            bindings.append(spanCount)
            bindings.append(errorCount)
            bindings.append(sources)
            bindings.append(replayOf)
            bindings.append(noReplay)
            bindings.append(lastSeq)
        }
    }

    private func insertTraceSpans(_ traces: [ProjectionBatch.SpanGrouping.TraceInBatch], numbers: [Int64]) async throws {
        var bindings = PostgresBindings(capacity: 3)
        bindings.append(numbers)
        bindings.append(traces.map { $0.seqs[0] })
        // Each row's seqs as an array literal, cast by PostgreSQL (unnest would flatten an array
        // of arrays).
        bindings.append(traces.map { "{" + $0.seqs.map(String.init).joined(separator: ",") + "}" })
        _ = try await connection.queryIfOpen(
            PostgresQuery(
                unsafeSQL: """
                    INSERT INTO trace_spans (trace, first_seq, seqs)
                    SELECT trace, first_seq, seqs::bigint[] FROM unnest($1::bigint[], $2::bigint[], $3::text[]) AS v(trace, first_seq, seqs)
                    """,
                binds: bindings
            ),
            logger: logger
        )
    }

    private func insertSpans(_ events: [Event], grouping: ProjectionBatch.SpanGrouping, numbers: [Int64]) async throws {
        var seq: [Int64] = []
        var traceId: [String] = []
        var spanId: [String] = []
        var parentSpanId: [String] = []
        var source: [String] = []
        var stage: [String] = []
        var operation: [String] = []
        var taskUUID: [String] = []
        var durationMs: [Double] = []
        var timestamp: [Int64] = []
        var ingestedAt: [Int64] = []
        var isError: [Int64] = []
        var trace: [Int64] = []
        /// Which of span_id (1), parent_span_id (2), task_uuid (4), duration_ms (8) are NULL.
        var nulls: [Int64] = []
        for index in events.indices where grouping.slot[index] >= 0 {
            guard case .span(let span) = events[index].body else { continue }
            seq.append(Int64(events[index].seq))
            traceId.append(span.traceId)
            spanId.append(span.spanId ?? "")
            parentSpanId.append(span.parentSpanId ?? "")
            source.append(span.source)
            stage.append(span.stage)
            operation.append(span.operation)
            taskUUID.append(span.taskUUID ?? "")
            durationMs.append(span.durationMs ?? 0)
            timestamp.append(span.timestamp)
            ingestedAt.append(events[index].ingestedAt)
            isError.append(grouping.isError[index] ? 1 : 0)
            trace.append(numbers[Int(grouping.slot[index])])
            nulls.append(
                (span.spanId == nil ? 1 : 0) | (span.parentSpanId == nil ? 2 : 0) | (span.taskUUID == nil ? 4 : 0) | (span.durationMs == nil ? 8 : 0)
            )
        }
        guard !seq.isEmpty else { return }
        var bindings = PostgresBindings(capacity: 14)
        bindings.append(seq)
        bindings.append(traceId)
        bindings.append(spanId)
        bindings.append(parentSpanId)
        bindings.append(source)
        bindings.append(stage)
        bindings.append(operation)
        bindings.append(taskUUID)
        bindings.append(durationMs)
        bindings.append(timestamp)
        bindings.append(ingestedAt)
        bindings.append(isError)
        bindings.append(trace)
        bindings.append(nulls)
        _ = try await connection.queryIfOpen(
            PostgresQuery(
                unsafeSQL: """
                    INSERT INTO operation_logs (seq, trace_id, span_id, parent_span_id, source, stage, operation, task_uuid, duration_ms,
                        timestamp, ingested_at, is_error, trace)
                    SELECT seq, trace_id, CASE WHEN nulls & 1 <> 0 THEN NULL ELSE span_id END,
                        CASE WHEN nulls & 2 <> 0 THEN NULL ELSE parent_span_id END, source, stage, operation,
                        CASE WHEN nulls & 4 <> 0 THEN NULL ELSE task_uuid END, CASE WHEN nulls & 8 <> 0 THEN NULL ELSE duration_ms END,
                        timestamp, ingested_at, is_error, trace
                    FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
                        $9::float8[], $10::bigint[], $11::bigint[], $12::bigint[], $13::bigint[], $14::bigint[])
                        AS v(seq, trace_id, span_id, parent_span_id, source, stage, operation, task_uuid, duration_ms, timestamp, ingested_at,
                            is_error, trace, nulls)
                    """,
                binds: bindings
            ),
            logger: logger
        )
    }

    // MARK: Events other than spans

    private func run(_ query: PostgresQuery) async throws {
        _ = try await connection.queryIfOpen(query, logger: logger)
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
