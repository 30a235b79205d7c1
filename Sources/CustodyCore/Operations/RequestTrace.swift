import Synchronization

/// The request (HTTP route or RPC call) a core operation runs for, so the operation can record
/// it in the request's trace (docs/api.md "Tracing of requests").
///
/// The `request_received` span is appended together with the operation's own events, in the same
/// append: a request that fails validation therefore appends nothing at all, and a request whose
/// events are durable always has its `request_received` span. The adapter appends the closing
/// `response_sent` span with ``CoreContext/recordResponse(_:status:)``.
public struct RequestTrace: Sendable {
    /// The trace the request belongs to (from `x-trace-id`, `traceparent`, or new).
    public var traceId: String
    /// The route template (`POST /api/tasks`) or the RPC method.
    public var operation: String
    /// When the request arrived (nanoseconds since the Unix epoch); nil for a call that is not a
    /// request (a test, a command), which then records no request spans.
    public var receivedAt: Int64?
    /// When the request arrived, for its duration.
    public var started: ContinuousClock.Instant
    /// Which of the request's spans are appended already (shared by the copies of this value).
    let recorded = RecordedSpans()

    public init(traceId: String, operation: String = "", receivedAt: Int64? = nil, started: ContinuousClock.Instant = .now) {
        self.traceId = traceId
        self.operation = operation
        self.receivedAt = receivedAt
        self.started = started
    }

    /// Which of a request's spans are in the log: set by the operation that appended them, read by
    /// ``CoreContext/recordResponse(_:status:error:)`` so that none is appended twice or missing.
    final class RecordedSpans: Sendable {
        let received = Atomic<Bool>(false)
        let closed = Atomic<Bool>(false)
    }

    /// The `request_received` span, when this is a request.
    var receivedSpan: Span? {
        guard let receivedAt else { return nil }
        return Span.orchestrator(stage: SpanStage.requestReceived.rawValue, operation: operation, requestTraceId: traceId, timestamp: receivedAt)
    }
}
