import Foundation
import NIOCore
import NIOHTTP1

/// One typed call per operation of docs/api.md. Each runs in the current trace (``CustodyTrace``).
extension CustodyClient {
    // MARK: TaskOps

    /// createTask: 201 with the new task, or the existing one for a `uuid` with equal content.
    public func createTask(orderId: String, payload: JSON, uuid: String? = nil) async throws(CustodyClientError) -> TaskRecord {
        if let rpc { return try await rpc.createTask(orderId: orderId, payload: payload, uuid: uuid) }
        struct Body: Encodable {
            var orderId: String
            var payload: JSON
            var uuid: String?
        }
        struct Answer: Decodable { var task: TaskRecord }
        return try await send(.POST, "/api/tasks", body: Body(orderId: orderId, payload: payload, uuid: uuid), as: Answer.self).task
    }

    public func updateTaskStatus(taskId: String, status: String) async throws(CustodyClientError) -> StatusChange {
        if let rpc { return try await rpc.updateTaskStatus(taskId: taskId, status: status) }
        struct Body: Encodable {
            var taskId: String
            var status: String
        }
        return try await send(.POST, "/api/tasks/updateStatus", body: Body(taskId: taskId, status: status))
    }

    /// recordFactoryError: returns the error's id.
    public func recordFactoryError(
        source: String,
        message: String,
        orderId: String? = nil,
        taskUUID: String? = nil,
        errorType: String? = nil,
        payload: JSON? = nil
    ) async throws(CustodyClientError) -> String {
        if let rpc {
            return try await rpc.recordFactoryError(
                source: source,
                message: message,
                orderId: orderId,
                taskUUID: taskUUID,
                errorType: errorType,
                payload: payload
            )
        }
        struct Body: Encodable {
            var source: String
            var message: String
            var orderId: String?
            var taskUuid: String?
            var errorType: String?
            var payload: JSON?
        }
        struct Answer: Decodable { var errorId: String }
        let body = Body(source: source, message: message, orderId: orderId, taskUuid: taskUUID, errorType: errorType, payload: payload)
        return try await send(.POST, "/api/tasks/errors", body: body, as: Answer.self).errorId
    }

    /// getTask, now or as of a seq / RFC 3339 instant (time travel).
    public func getTask(_ uuid: String, asOf: String? = nil) async throws(CustodyClientError) -> TaskRecord {
        if let rpc { return try await rpc.getTask(uuid, asOf: asOf) }
        struct Answer: Decodable {
            var task: TaskRecord
            var asOfSeq: UInt64?
        }
        let answer = try await send(.GET, "/api/tasks/" + Self.percentEncoded(uuid), query: [("as_of", asOf)], as: Answer.self)
        var task = answer.task
        task.asOfSeq = task.asOfSeq ?? answer.asOfSeq
        return task
    }

    public func listTasks(
        orderId: String? = nil,
        status: String? = nil,
        limit: Int? = nil,
        cursor: String? = nil
    ) async throws(CustodyClientError)
        -> TaskPage
    {
        try await send(
            .GET,
            "/api/tasks",
            query: [("order_id", orderId), ("status", status), ("limit", limit.map(String.init)), ("cursor", cursor)]
        )
    }

    // MARK: DeliveryOps

    public func submitOpsFollowup(orderId: String, type: String, note: String, impact: String) async throws(CustodyClientError) -> Followup {
        if let rpc { return try await rpc.submitOpsFollowup(orderId: orderId, type: type, note: note, impact: impact) }
        struct Body: Encodable {
            var type: String
            var note: String
            var impact: String
        }
        struct Answer: Decodable { var followup: Followup }
        let path = "/api/delivery/\(Self.percentEncoded(orderId))/followups"
        return try await send(.POST, path, body: Body(type: type, note: note, impact: impact), as: Answer.self).followup
    }

    public func fetchFollowups(orderId: String, asOf: String? = nil) async throws(CustodyClientError) -> [Followup] {
        if let rpc { return try await rpc.fetchFollowups(orderId: orderId, asOf: asOf) }
        struct Answer: Decodable { var followups: [Followup] }
        return try await send(.GET, "/api/delivery/\(Self.percentEncoded(orderId))/followups", query: [("as_of", asOf)], as: Answer.self)
            .followups
    }

    /// finalizeDeliveryReport: the report (docs/api.md's fields) as JSON.
    public func finalizeDeliveryReport(orderId: String) async throws(CustodyClientError) -> JSON {
        if let rpc { return try await rpc.finalizeDeliveryReport(orderId: orderId) }
        struct Answer: Decodable { var report: JSON }
        return try await send(.POST, "/api/delivery/\(Self.percentEncoded(orderId))/finalize", body: Nothing(), as: Answer.self).report
    }

    public func getReport(orderId: String) async throws(CustodyClientError) -> JSON {
        struct Answer: Decodable { var report: JSON }
        return try await send(.GET, "/api/delivery/\(Self.percentEncoded(orderId))/report", as: Answer.self).report
    }

    // MARK: LogOps

    /// recordLog with one entry; returns its trace id. Durable when it returns.
    public func recordLog(_ entry: LogEntry) async throws(CustodyClientError) -> String {
        if let rpc { return try await rpc.recordLog([entry]).traceIds.first ?? "" }
        struct Answer: Decodable { var traceId: String }
        return try await send(.POST, "/api/logs", body: entry, as: Answer.self).traceId
    }

    /// recordLog with many entries (at most 10,000) in one durable append.
    public func recordLog(_ entries: [LogEntry]) async throws(CustodyClientError) -> LogReceipt {
        if let rpc { return try await rpc.recordLog(entries) }
        struct Body: Encodable { var entries: [LogEntry] }
        return try await send(.POST, "/api/logs", body: Body(entries: entries))
    }

    // MARK: Traces and TraceReplay

    public func getTrace(_ traceId: String) async throws(CustodyClientError) -> TraceDocument {
        if let rpc { return try await rpc.getTrace(traceId) }
        return try await send(.GET, "/api/traces/" + Self.percentEncoded(traceId))
    }

    /// The critical path of a trace (docs/api.md, "Trace analysis").
    public func criticalPath(_ traceId: String) async throws(CustodyClientError) -> CriticalPathDocument {
        if let rpc { return try await rpc.criticalPath(traceId) }
        return try await send(.GET, "/api/traces/" + Self.percentEncoded(traceId) + "/critical-path")
    }

    /// The custody graph over a window: `since` and `until` are RFC 3339 (the server's defaults:
    /// the hour before now); `source` keeps its edges and the nodes they join.
    public func graph(since: String? = nil, until: String? = nil, source: String? = nil) async throws(CustodyClientError) -> GraphDocument {
        try await send(.GET, "/api/graph", query: [("since", since), ("until", until), ("source", source)])
    }

    /// Traces matching a query of the query language (`{ source = "x" && duration > 100ms }`),
    /// newest first; `nextCursor` continues. A query the indexes cannot narrow needs `since`.
    public func queryTraces(
        _ query: String,
        since: String? = nil,
        until: String? = nil,
        limit: Int = 50,
        cursor: String? = nil
    ) async throws(CustodyClientError) -> TracePage {
        try await send(
            .GET,
            "/api/traces",
            query: [("q", query), ("since", since), ("until", until), ("limit", String(limit)), ("cursor", cursor)]
        )
    }

    /// A metrics query (`{ status = error } | rate() by (source)`) as time series over a window
    /// (the server's defaults: the last hour, sixty steps). `step` is seconds or `30s`, `1m`.
    public func queryMetrics(
        _ query: String,
        since: String? = nil,
        until: String? = nil,
        step: String? = nil
    ) async throws(CustodyClientError) -> MetricsDocument {
        let body = try await exchange(
            .GET,
            "/api/metrics/query",
            query: [("q", query), ("since", since), ("until", until), ("step", step)],
            body: nil
        )
        do {
            return try JSONDecoder().decode(Envelope<MetricsDocument>.self, from: Data(body.readableBytesView)).data
        } catch {
            throw CustodyClientError(status: 200, code: "invalid_answer", message: "the answer could not be decoded: \(error)")
        }
    }

    /// Traces matching the filters, newest first; `nextCursor` continues.
    public func searchTraces(
        source: String? = nil,
        operation: String? = nil,
        stage: String? = nil,
        errorsOnly: Bool = false,
        query: String? = nil,
        limit: Int = 50,
        cursor: String? = nil
    ) async throws(CustodyClientError) -> TracePage {
        try await send(
            .GET,
            "/api/traces",
            query: [
                ("source", source), ("operation", operation), ("stage", stage), ("error", errorsOnly ? "true" : nil), ("q", query),
                ("limit", String(limit)), ("cursor", cursor),
            ]
        )
    }

    /// replayTrace: returns when the replay is complete.
    public func replayTrace(_ traceId: String, mode: ReplayMode = .dryRun, speed: Double = 0) async throws(CustodyClientError) -> ReplayResult {
        if let rpc { return try await rpc.replayTrace(traceId, mode: mode, speed: speed) }
        struct Body: Encodable {
            var mode: ReplayMode
            var speed: Double
        }
        return try await send(.POST, "/api/traces/replay/" + Self.percentEncoded(traceId), body: Body(mode: mode, speed: speed))
    }

    public func replays(limit: Int = 50) async throws(CustodyClientError) -> [ReplayRecord] {
        struct Answer: Decodable { var replays: [ReplayRecord] }
        return try await send(.GET, "/api/replays", query: [("limit", String(limit))], as: Answer.self).replays
    }

    /// The comparison of two traces (docs/api.md "compare") as JSON.
    public func compareTraces(_ a: String, _ b: String) async throws(CustodyClientError) -> JSON {
        try await send(.GET, "/api/traces/\(Self.percentEncoded(a))/compare/\(Self.percentEncoded(b))")
    }

    // MARK: Operations

    /// `GET /api/admin/stats`: what the server measures about itself (the log, its recovery and
    /// recorded losses, projections, cache, live stream), as JSON.
    public func adminStats() async throws(CustodyClientError) -> JSON {
        try await send(.GET, "/api/admin/stats")
    }

    /// `POST /api/admin/backup` (admin role): the server writes a consistent copy of its data
    /// directory to `directory` (on its own machine) and answers with what it copied, its head seq
    /// and chain value.
    public func backup(to directory: String, includeKey: Bool = false) async throws(CustodyClientError) -> JSON {
        struct Body: Encodable {
            var to: String
            var includeKey: Bool
        }
        return try await send(.POST, "/api/admin/backup", body: Body(to: directory, includeKey: includeKey))
    }

    /// `GET /api/admin/cluster`: the stream, every node seen (applied seq, lag, lease) and what is
    /// unhealthy, as JSON (docs/operations.md, "Cluster mode").
    public func clusterStatus() async throws(CustodyClientError) -> JSON {
        try await send(.GET, "/api/admin/cluster")
    }
}
