import Logging

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A worker's spans, the seed's pattern: ``withTrace(_:operation:_:)`` runs a flow in a trace
/// with `before_call` / `after_call` spans, ``orchestratorCall(_:_:)`` wraps a call to Custody in
/// `before_rpc` / `after_rpc`, ``span(_:stage:details:_:)`` times a piece of work as a nested span.
/// Spans go through the ``SpanExporter`` (never blocking); calls to Custody carry the trace.
public struct WorkerTracer: Sendable {
    /// The worker's name: the `source` of its spans.
    public let source: String
    public let client: CustodyClient
    public let exporter: SpanExporter

    public init(source: String, client: CustodyClient, exporter: SpanExporter) {
        self.source = source
        self.client = client
        self.exporter = exporter
    }

    /// Records one span of this worker in the current trace (a new trace when there is none).
    public func record(
        stage: String,
        operation: String,
        durationMs: Double? = nil,
        taskUUID: String? = nil,
        spanId: String? = CustodyTrace.newSpanId(),
        start: Date = Date(),
        details: JSON? = nil
    ) {
        let trace = CustodyTrace.current
        exporter.record(
            LogEntry(
                traceId: trace?.traceId ?? UUID().uuidString.lowercased(),
                spanId: spanId,
                parentSpanId: trace?.spanId,
                source: source,
                stage: stage,
                operation: operation,
                taskUUID: taskUUID,
                durationMs: durationMs,
                timestamp: Self.timestamp(start),
                details: details
            )
        )
    }

    /// Runs `body` in trace `traceId` (a new one when nil): `before_call` when it starts and
    /// `after_call` with its duration and `{"success": true}` or `{"error": …}` when it ends.
    public func withTrace<T>(_ traceId: String? = nil, operation: String, _ body: () async throws -> T) async rethrows -> T {
        try await CustodyTrace.$current.withValue(CustodyTrace(traceId: traceId ?? UUID().uuidString.lowercased())) {
            try await timed(operation: operation, before: "before_call", after: "after_call", body)
        }
    }

    /// Calls Custody (`call` gets the client) inside the current trace: `before_rpc`, the call,
    /// then `after_rpc` with `{"ok": true}` or the error. Throws the call's error.
    public func orchestratorCall<T>(
        _ operation: String,
        _ call: (CustodyClient) async throws(CustodyClientError) -> T
    )
        async throws(CustodyClientError) -> T
    {
        let started = Date()
        let clock = ContinuousClock.now
        let spanId = CustodyTrace.newSpanId()
        record(stage: "before_rpc", operation: operation, start: started)
        do {
            let result = try await call(client)
            record(
                stage: "after_rpc",
                operation: operation,
                durationMs: Self.milliseconds(since: clock),
                spanId: spanId,
                start: started,
                details: ["ok": true]
            )
            return result
        } catch {
            record(
                stage: "after_rpc",
                operation: operation,
                durationMs: Self.milliseconds(since: clock),
                spanId: spanId,
                start: started,
                details: ["ok": false, "error": .string(error.message), "code": .string(error.code)]
            )
            throw error
        }
    }

    /// Times `body` as one span (`stage`, default `processing`) nested in the current span; spans
    /// recorded inside it are its children. A thrown error is recorded in `details.error`.
    public func span<T>(_ operation: String, stage: String = "processing", details: JSON? = nil, _ body: () async throws -> T) async rethrows -> T {
        let started = Date()
        let clock = ContinuousClock.now
        let spanId = CustodyTrace.newSpanId()
        let trace = CustodyTrace.current ?? CustodyTrace(traceId: UUID().uuidString.lowercased())
        do {
            let result = try await CustodyTrace.$current.withValue(CustodyTrace(traceId: trace.traceId, spanId: spanId)) { try await body() }
            record(stage: stage, operation: operation, durationMs: Self.milliseconds(since: clock), spanId: spanId, start: started, details: details)
            return result
        } catch {
            var merged: [String: JSON] = [:]
            if case .object(let object)? = details { merged = object }
            merged["error"] = .string("\(error)")
            record(
                stage: stage,
                operation: operation,
                durationMs: Self.milliseconds(since: clock),
                spanId: spanId,
                start: started,
                details: .object(merged)
            )
            throw error
        }
    }

    func timed<T>(operation: String, before: String, after: String, _ body: () async throws -> T) async rethrows -> T {
        let spanId = CustodyTrace.newSpanId()
        let started = Date()
        let clock = ContinuousClock.now
        record(stage: before, operation: operation, start: started)
        let trace = CustodyTrace.current
        do {
            let result = try await CustodyTrace.$current.withValue(CustodyTrace(traceId: trace?.traceId ?? "", spanId: spanId)) { try await body() }
            record(
                stage: after,
                operation: operation,
                durationMs: Self.milliseconds(since: clock),
                spanId: spanId,
                start: started,
                details: ["success": true]
            )
            return result
        } catch {
            record(
                stage: after,
                operation: operation,
                durationMs: Self.milliseconds(since: clock),
                spanId: spanId,
                start: started,
                details: ["success": false, "error": .string("\(error)")]
            )
            throw error
        }
    }

    static func milliseconds(since start: ContinuousClock.Instant) -> Double {
        let elapsed = ContinuousClock.now - start
        return Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
    }

    /// RFC 3339 with milliseconds, in UTC.
    static func timestamp(_ date: Date) -> String {
        date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
    }
}
