import CustodyLog
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
        /// The receipt of the request's last write.
        let receipt = Mutex<Receipt?>(nil)
    }

    /// The receipt of the write this request made (its last append, when it made several), nil
    /// when it wrote nothing: what the adapter returns as `receipt` and `x-custody-receipt`.
    public var receipt: Receipt? { recorded.receipt.withLock { $0 } }

    /// Keeps the receipt of an append made for this request.
    func noteWrite(_ appended: AppendReceipt) {
        guard let receipt = Receipt(appended) else { return }
        recorded.receipt.withLock { $0 = receipt }
    }

    /// The `request_received` span, when this is a request.
    var receivedSpan: Span? {
        guard let receivedAt else { return nil }
        return Span.orchestrator(stage: SpanStage.requestReceived.rawValue, operation: operation, requestTraceId: traceId, timestamp: receivedAt)
    }
}
