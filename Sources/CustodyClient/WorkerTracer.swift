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
    public func withTrace<T>(_ traceId: String? = nil, operation: String, _ body: () async throws -> T) async throws -> T {
        try await CustodyTrace.$current.withValue(CustodyTrace(traceId: traceId ?? UUID().uuidString.lowercased())) {
            try await measured(operation, stage: "after_call", before: "before_call", succeeded: ["success": true]) { error in
                ["success": false, "error": .string("\(error)")]
            } _: {
                try await body()
            }
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
        try await measured(operation, stage: "after_rpc", before: "before_rpc", succeeded: ["ok": true]) { error in
            ["ok": false, "error": .string(error.message), "code": .string(error.code)]
        } _: { () async throws(CustodyClientError) -> T in
            try await call(client)
        }
    }

    /// Times `body` as one span (`stage`, default `processing`) nested in the current span; spans
    /// recorded inside it are its children. A thrown error is recorded in `details.error`.
    public func span<T>(_ operation: String, stage: String = "processing", details: JSON? = nil, _ body: () async throws -> T) async throws -> T {
        try await measured(operation, stage: stage, succeeded: details) { error in
            var merged: [String: JSON] = [:]
            if case .object(let object)? = details { merged = object }
            merged["error"] = .string("\(error)")
            return .object(merged)
        } _: {
            try await body()
        }
    }

    /// The one shape of all three: a span of its own (and `before`, when given, as it starts),
    /// the current span while `body` runs (so what it records nests under it), then `stage` with
    /// the duration and the details of how it went. `body`'s error is rethrown as it is.
    func measured<T, E: Error>(
        _ operation: String,
        stage: String,
        before: String? = nil,
        succeeded: JSON?,
        failed: (E) -> JSON,
        _ body: () async throws(E) -> T
    ) async throws(E) -> T {
        let spanId = CustodyTrace.newSpanId()
        let started = Date()
        let clock = ContinuousClock.now
        if let before { record(stage: before, operation: operation, start: started) }
        let trace = CustodyTrace(traceId: CustodyTrace.current?.traceId ?? UUID().uuidString.lowercased(), spanId: spanId)
        let outcome: Result<T, E> = await CustodyTrace.$current.withValue(trace) {
            do throws(E) {
                return .success(try await body())
            } catch {
                return .failure(error)
            }
        }
        let details: JSON?
        switch outcome {
        case .success: details = succeeded
        case .failure(let error): details = failed(error)
        }
        record(stage: stage, operation: operation, durationMs: Self.milliseconds(since: clock), spanId: spanId, start: started, details: details)
        return try outcome.get()
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
