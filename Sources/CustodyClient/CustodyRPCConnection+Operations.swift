import CustodyRPC
import GRPCCore
import GRPCProtobuf
import SwiftProtobuf

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The typed calls over gRPC: each builds its request message, calls the method of the same name,
/// and maps the answer to the model the HTTP transport returns.
extension CustodyRPCConnection {
    // MARK: TaskOps

    func createTask(orderId: String, payload: JSON, uuid: String?) async throws(CustodyClientError) -> TaskRecord {
        var request = Custody_V1_CreateTaskRequest()
        request.orderID = orderId
        request.payload = try Self.structure(payload)
        if let uuid { request.uuid = uuid }
        let reply = try await call { client, metadata, options in
            try await Custody_V1_TaskOps.Client(wrapping: client).createTask(request, metadata: metadata, options: options)
        }
        return try Self.task(reply.task, asOf: nil)
    }

    func updateTaskStatus(taskId: String, status: String) async throws(CustodyClientError) -> StatusChange {
        var request = Custody_V1_UpdateTaskStatusRequest()
        request.taskID = taskId
        request.status = status
        let (reply, receipt) = try await call { client, metadata, options in
            try await Custody_V1_TaskOps.Client(wrapping: client).updateTaskStatus(request, metadata: metadata, options: options) {
                (try $0.message, Self.receipt($0.metadata))
            }
        }
        return StatusChange(taskId: reply.taskID, status: reply.status, previousStatus: reply.previousStatus, receipt: receipt)
    }

    func recordFactoryError(
        source: String,
        message: String,
        orderId: String?,
        taskUUID: String?,
        errorType: String?,
        payload: JSON?
    ) async throws(CustodyClientError) -> String {
        var request = Custody_V1_RecordFactoryErrorRequest()
        request.source = source
        request.message = message
        if let orderId { request.orderID = orderId }
        if let taskUUID { request.taskUuid = taskUUID }
        if let errorType { request.errorType = errorType }
        if let payload { request.payload = try Self.structure(payload) }
        return try await call { client, metadata, options in
            try await Custody_V1_TaskOps.Client(wrapping: client).recordFactoryError(request, metadata: metadata, options: options).errorID
        }
    }

    func getTask(_ uuid: String, asOf: String?) async throws(CustodyClientError) -> TaskRecord {
        var request = Custody_V1_GetTaskRequest()
        request.uuid = uuid
        if let asOf { request.asOf = asOf }
        let reply = try await call { client, metadata, options in
            try await Custody_V1_TaskOps.Client(wrapping: client).getTask(request, metadata: metadata, options: options)
        }
        return try Self.task(reply.task, asOf: reply.hasAsOfSeq ? reply.asOfSeq : nil)
    }

    // MARK: DeliveryOps

    func submitOpsFollowup(orderId: String, type: String, note: String, impact: String) async throws(CustodyClientError) -> Followup {
        var request = Custody_V1_SubmitOpsFollowupRequest()
        request.orderID = orderId
        request.type = type
        request.note = note
        request.impact = impact
        let reply = try await call { client, metadata, options in
            try await Custody_V1_DeliveryOps.Client(wrapping: client).submitOpsFollowup(request, metadata: metadata, options: options)
        }
        return Self.followup(reply)
    }

    func fetchFollowups(orderId: String, asOf: String?) async throws(CustodyClientError) -> [Followup] {
        var request = Custody_V1_FetchFollowupsRequest()
        request.orderID = orderId
        if let asOf { request.asOf = asOf }
        let reply = try await call { client, metadata, options in
            try await Custody_V1_DeliveryOps.Client(wrapping: client).fetchFollowups(request, metadata: metadata, options: options)
        }
        return reply.followups.map(Self.followup)
    }

    func finalizeDeliveryReport(orderId: String) async throws(CustodyClientError) -> JSON {
        var request = Custody_V1_FinalizeDeliveryReportRequest()
        request.orderID = orderId
        let reply = try await call { client, metadata, options in
            try await Custody_V1_DeliveryOps.Client(wrapping: client).finalizeDeliveryReport(request, metadata: metadata, options: options)
        }
        return try Self.json(reply.report)
    }

    // MARK: LogOps

    func recordLog(_ entries: [LogEntry]) async throws(CustodyClientError) -> LogReceipt {
        var request = Custody_V1_RecordLogRequest()
        request.entries = try entries.map(Self.entry)
        let (reply, receipt) = try await call { client, metadata, options in
            try await Custody_V1_LogOps.Client(wrapping: client).recordLog(request, metadata: metadata, options: options) {
                (try $0.message, Self.receipt($0.metadata))
            }
        }
        return LogReceipt(traceIds: reply.traceIds, accepted: Int(reply.accepted), firstSeq: reply.firstSeq, lastSeq: reply.lastSeq, receipt: receipt)
    }

    func getTrace(_ traceId: String) async throws(CustodyClientError) -> TraceDocument {
        var request = Custody_V1_GetTraceRequest()
        request.traceID = traceId
        let reply = try await call { client, metadata, options in
            try await Custody_V1_LogOps.Client(wrapping: client).getTrace(request, metadata: metadata, options: options)
        }
        let summary = reply.summary
        return TraceDocument(
            traceId: reply.traceID,
            spans: try reply.spans.map(Self.span),
            summary: TraceSummary(
                traceId: summary.traceID,
                rootOperation: summary.rootOperation,
                start: summary.start,
                end: summary.end,
                durationMs: summary.durationMs,
                spanCount: Int(summary.spanCount),
                errorCount: Int(summary.errorCount),
                sources: summary.sources,
                replayOf: summary.hasReplayOf ? summary.replayOf : nil
            )
        )
    }

    func criticalPath(_ traceId: String) async throws(CustodyClientError) -> CriticalPathDocument {
        var request = Custody_V1_GetTraceRequest()
        request.traceID = traceId
        let reply = try await call { client, metadata, options in
            try await Custody_V1_LogOps.Client(wrapping: client).criticalPath(request, metadata: metadata, options: options)
        }
        return CriticalPathDocument(
            traceId: reply.traceID,
            durationMs: reply.durationMs,
            path: reply.path.map { step in
                CriticalPathDocument.Step(
                    spanId: step.hasSpanID ? step.spanID : nil,
                    seq: step.seq,
                    source: step.source,
                    operation: step.operation,
                    stage: step.stage,
                    depth: Int(step.depth),
                    selfMs: step.selfMs,
                    startOffsetMs: step.startOffsetMs,
                    sections: step.sections.map { [$0.fromMs, $0.toMs] }
                )
            },
            gapMs: reply.gapMs,
            retention: reply.hasRetainedFromSeq
                ? TraceRetention(
                    partial: true,
                    firstSeq: reply.retainedFromSeq,
                    note: "spans of this trace before seq \(reply.retainedFromSeq) were deleted by retention"
                ) : nil
        )
    }

    // MARK: TraceReplay

    func replayTrace(_ traceId: String, mode: ReplayMode, speed: Double) async throws(CustodyClientError) -> ReplayResult {
        var request = Custody_V1_ReplayTraceRequest()
        request.traceID = traceId
        request.mode = mode.rawValue
        request.speed = speed
        let reply = try await call { client, metadata, options in
            try await Custody_V1_TraceReplay.Client(wrapping: client).replayTrace(request, metadata: metadata, options: options)
        }
        return ReplayResult(
            newTrace: reply.newTrace,
            fromTrace: reply.fromTrace,
            mode: ReplayMode(rawValue: reply.mode) ?? mode,
            speed: reply.speed,
            spans: Int(reply.spans),
            errors: Int(reply.errors),
            undispatched: reply.undispatched.mapValues(Int.init),
            durationMs: reply.durationMs,
            status: reply.status
        )
    }

    // MARK: GitHubOps

    func upsertFile(
        path: String,
        content: String,
        message: String,
        owner: String?,
        repo: String?,
        branch: String?,
        idempotencyKey: String?,
        wait: Bool
    ) async throws(CustodyClientError) -> GitHubOperation {
        var request = Custody_V1_UpsertFileRequest()
        request.path = path
        request.content = content
        request.message = message
        if let owner { request.owner = owner }
        if let repo { request.repo = repo }
        if let branch { request.branch = branch }
        if let idempotencyKey { request.idempotencyKey = idempotencyKey }
        request.wait = wait
        let reply = try await call { client, metadata, options in
            try await Custody_V1_GitHubOps.Client(wrapping: client).upsertFile(request, metadata: metadata, options: Self.waiting(options, wait))
        }
        return try Self.operation(reply)
    }

    func openPR(
        title: String,
        head: String,
        base: String,
        body: String?,
        owner: String?,
        repo: String?,
        idempotencyKey: String?,
        wait: Bool
    ) async throws(CustodyClientError) -> GitHubOperation {
        var request = Custody_V1_OpenPRRequest()
        request.title = title
        request.head = head
        request.base = base
        if let body { request.body = body }
        if let owner { request.owner = owner }
        if let repo { request.repo = repo }
        if let idempotencyKey { request.idempotencyKey = idempotencyKey }
        request.wait = wait
        let reply = try await call { client, metadata, options in
            try await Custody_V1_GitHubOps.Client(wrapping: client).openPR(request, metadata: metadata, options: Self.waiting(options, wait))
        }
        return try Self.operation(reply)
    }

    func createIssue(
        title: String,
        body: String?,
        labels: [String]?,
        owner: String?,
        repo: String?,
        idempotencyKey: String?,
        wait: Bool
    ) async throws(CustodyClientError) -> GitHubOperation {
        var request = Custody_V1_CreateIssueRequest()
        request.title = title
        if let body { request.body = body }
        request.labels = labels ?? []
        if let owner { request.owner = owner }
        if let repo { request.repo = repo }
        if let idempotencyKey { request.idempotencyKey = idempotencyKey }
        request.wait = wait
        let reply = try await call { client, metadata, options in
            try await Custody_V1_GitHubOps.Client(wrapping: client).createIssue(request, metadata: metadata, options: Self.waiting(options, wait))
        }
        return try Self.operation(reply)
    }

    func getOperation(_ id: String) async throws(CustodyClientError) -> GitHubOperation {
        var request = Custody_V1_GetOperationRequest()
        request.id = id
        let reply = try await call { client, metadata, options in
            try await Custody_V1_GitHubOps.Client(wrapping: client).getOperation(request, metadata: metadata, options: options)
        }
        return try Self.operation(reply)
    }

    // MARK: Mapping

    /// A waiting GitHub call may take the server's 30 s wait limit and then some.
    static func waiting(_ options: CallOptions, _ wait: Bool) -> CallOptions {
        var options = options
        if wait, let timeout = options.timeout { options.timeout = max(timeout, .seconds(40)) }
        return options
    }

    static func structure(_ json: JSON) throws(CustodyClientError) -> Google_Protobuf_Struct {
        do {
            return try Google_Protobuf_Struct(jsonUTF8Data: try JSONEncoder().encode(json))
        } catch {
            throw CustodyClientError(status: 0, code: "invalid_argument", message: "a payload or details must be a JSON object")
        }
    }

    static func json(_ structure: Google_Protobuf_Struct) throws(CustodyClientError) -> JSON {
        do {
            return try JSONDecoder().decode(JSON.self, from: try structure.jsonUTF8Data())
        } catch {
            throw CustodyClientError(status: 200, code: "invalid_answer", message: "the answer could not be decoded: \(error)")
        }
    }

    static func task(_ task: Custody_V1_Task, asOf: UInt64?) throws(CustodyClientError) -> TaskRecord {
        TaskRecord(
            uuid: task.uuid,
            orderId: task.orderID,
            status: task.status,
            payload: try json(task.payload),
            createdAt: task.createdAt,
            updatedAt: task.updatedAt,
            lastSeq: task.lastSeq,
            asOfSeq: asOf
        )
    }

    static func followup(_ followup: Custody_V1_Followup) -> Followup {
        Followup(
            id: followup.id,
            orderId: followup.orderID,
            type: followup.type,
            note: followup.note,
            impact: followup.impact,
            createdAt: followup.createdAt
        )
    }

    static func entry(_ entry: LogEntry) throws(CustodyClientError) -> Custody_V1_LogEntry {
        var message = Custody_V1_LogEntry()
        if let value = entry.traceId { message.traceID = value }
        if let value = entry.spanId { message.spanID = value }
        if let value = entry.parentSpanId { message.parentSpanID = value }
        if let value = entry.source { message.source = value }
        if let value = entry.stage { message.stage = value }
        if let value = entry.operation { message.operation = value }
        if let value = entry.taskUuid { message.taskUuid = value }
        if let value = entry.durationMs { message.durationMs = value }
        if let value = entry.timestamp { message.timestamp = value }
        if let value = entry.details {
            // As JSON text: the server stores it as sent (a Struct would be re-encoded).
            do {
                message.detailsJson = String(decoding: try JSONEncoder().encode(value), as: UTF8.self)
            } catch {
                throw CustodyClientError(status: 0, code: "invalid_argument", message: "details could not be encoded: \(error)")
            }
        }
        return message
    }

    static func span(_ span: Custody_V1_Span) throws(CustodyClientError) -> SpanRecord {
        SpanRecord(
            seq: span.seq,
            traceId: span.traceID,
            spanId: span.hasSpanID ? span.spanID : nil,
            parentSpanId: span.hasParentSpanID ? span.parentSpanID : nil,
            source: span.source,
            stage: span.stage,
            operation: span.operation,
            taskUuid: span.hasTaskUuid ? span.taskUuid : nil,
            durationMs: span.hasDurationMs ? span.durationMs : nil,
            timestamp: span.timestamp,
            details: span.hasDetails ? try json(span.details) : nil
        )
    }

    static func operation(_ operation: Custody_V1_GitHubOperation) throws(CustodyClientError) -> GitHubOperation {
        GitHubOperation(
            id: operation.id,
            kind: operation.kind,
            status: operation.status,
            params: try json(operation.params),
            attempts: Int(operation.attempts),
            result: operation.hasResult ? try json(operation.result) : nil,
            error: operation.hasError ? try json(operation.error) : nil,
            idempotencyKey: operation.idempotencyKey,
            traceId: operation.traceID,
            requestedAt: operation.requestedAt,
            updatedAt: operation.updatedAt,
            nextAttemptAt: operation.hasNextAttemptAt ? operation.nextAttemptAt : nil
        )
    }
}

extension CustodyRPCConnection {
    /// The `x-custody-receipt` response metadata of a write.
    static func receipt(_ metadata: Metadata) -> WriteReceipt? {
        metadata[stringValues: "x-custody-receipt"].first { _ in true }.flatMap(WriteReceipt.init(header:))
    }
}
