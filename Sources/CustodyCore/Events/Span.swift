/// A span (log entry) of a trace, as docs/api.md defines it, after validation and defaults.
public struct Span: Sendable, Hashable {
    public var traceId: String
    public var spanId: String?
    public var parentSpanId: String?
    public var source: String
    public var stage: String
    public var operation: String
    public var taskUUID: String?
    public var durationMs: Double?
    /// When the span happened (the sender's `timestamp`, else the server's time), in nanoseconds
    /// since the Unix epoch.
    public var timestamp: Int64
    /// A JSON object of at most 64 KiB, or nil.
    public var details: JSONText?

    public init(
        traceId: String,
        spanId: String? = nil,
        parentSpanId: String? = nil,
        source: String = "unknown",
        stage: String = SpanStage.processing.rawValue,
        operation: String = "unknown",
        taskUUID: String? = nil,
        durationMs: Double? = nil,
        timestamp: Int64,
        details: JSONText? = nil
    ) {
        self.traceId = traceId
        self.spanId = spanId
        self.parentSpanId = parentSpanId
        self.source = source
        self.stage = stage
        self.operation = operation
        self.taskUUID = taskUUID
        self.durationMs = durationMs
        self.timestamp = timestamp
        self.details = details
    }

    /// A span of the orchestrator's own work on a request (source `orchestrator`, in the
    /// request's trace): the `processing` span every core operation appends, or its `error` span.
    /// The source of Custody's own spans (requests, operations, replays).
    public static let orchestratorSource = "orchestrator"

    public static func orchestrator(
        stage: String,
        operation: String,
        requestTraceId: String,
        durationMs: Double? = nil,
        timestamp: Int64,
        details: JSONText? = nil
    ) -> Span {
        Span(
            traceId: requestTraceId,
            source: Span.orchestratorSource,
            stage: stage,
            operation: operation,
            durationMs: durationMs,
            timestamp: timestamp,
            details: details
        )
    }

    /// When the span ended (nanoseconds): its timestamp plus its duration, saturating at the
    /// largest timestamp instead of overflowing (validation keeps new spans far from it).
    public var end: Int64 {
        guard let durationMs, durationMs > 0 else { return timestamp }
        let nanoseconds = durationMs * 1_000_000
        guard nanoseconds < 9.2e18 else { return .max }
        let (sum, overflow) = timestamp.addingReportingOverflow(Int64(nanoseconds))
        return overflow ? .max : sum
    }

    /// docs/api.md: an error span has stage `error` or `replay_error`, or a `details.error`.
    public var isError: Bool { Self.isErrorStage(stage) || (details?.hasTopLevelKey("error") ?? false) }

    /// docs/api.md: an error span has stage `error` or `replay_error`, or a `details.error`. The last
    /// is decided when the span is validated (``SpanInput``), which knows the parsed details.
    public static func isErrorStage(_ stage: String) -> Bool { stage == SpanStage.error.rawValue || stage == SpanStage.replayError.rawValue }
}

/// The stages Custody itself records (docs/events.md); a worker's span may carry any other
/// stage name. ``Span/stage`` holds the ``rawValue``.
public struct SpanStage: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }

    public static let requestReceived = SpanStage(rawValue: "request_received")
    public static let processing = SpanStage(rawValue: "processing")
    public static let outboundCall = SpanStage(rawValue: "outbound_call")
    public static let responseSent = SpanStage(rawValue: "response_sent")
    public static let error = SpanStage(rawValue: "error")
    public static let replayStart = SpanStage(rawValue: "replay_start")
    public static let replaySpanStart = SpanStage(rawValue: "replay_span_start")
    public static let replaySpanEnd = SpanStage(rawValue: "replay_span_end")
    public static let replayError = SpanStage(rawValue: "replay_error")
    public static let replayAbort = SpanStage(rawValue: "replay_abort")
    public static let replayComplete = SpanStage(rawValue: "replay_complete")

    public var description: String { rawValue }
}
