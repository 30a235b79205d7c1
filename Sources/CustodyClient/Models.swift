/// The API's records as a worker sees them (docs/api.md). Timestamps are RFC 3339 text as the
/// server sends them.

/// A task (docs/api.md "Task").
public struct TaskRecord: Sendable, Hashable, Decodable {
    public var uuid: String
    public var orderId: String
    public var status: String
    public var payload: JSON
    public var createdAt: String
    public var updatedAt: String
    public var lastSeq: UInt64
    /// The log position a time-travel read stood at.
    public var asOfSeq: UInt64?
}

/// What `updateTaskStatus` answers.
public struct StatusChange: Sendable, Hashable, Decodable {
    public var taskId: String
    public var status: String
    public var previousStatus: String
    /// The write's proof receipt.
    public var receipt: WriteReceipt?
}

/// A page of `listTasks`.
public struct TaskPage: Sendable, Hashable, Decodable {
    public var tasks: [TaskRecord]
    public var nextCursor: String?
}

/// An ops follow-up (docs/api.md "Delivery").
public struct Followup: Sendable, Hashable, Decodable {
    public var id: String
    public var orderId: String
    public var type: String
    public var note: String
    public var impact: String
    public var createdAt: String
}

/// One span to record (docs/api.md "Log entry"). Everything but `traceId` may be left to the server's
/// defaults; `timestamp` is RFC 3339 (the server's time when absent).
public struct LogEntry: Sendable, Hashable, Codable {
    public var traceId: String?
    public var spanId: String?
    public var parentSpanId: String?
    public var source: String?
    public var stage: String?
    public var operation: String?
    public var taskUuid: String?
    public var durationMs: Double?
    public var timestamp: String?
    public var details: JSON?

    public init(
        traceId: String? = nil,
        spanId: String? = nil,
        parentSpanId: String? = nil,
        source: String? = nil,
        stage: String? = nil,
        operation: String? = nil,
        taskUUID: String? = nil,
        durationMs: Double? = nil,
        timestamp: String? = nil,
        details: JSON? = nil
    ) {
        self.traceId = traceId
        self.spanId = spanId
        self.parentSpanId = parentSpanId
        self.source = source
        self.stage = stage
        self.operation = operation
        self.taskUuid = taskUUID
        self.durationMs = durationMs
        self.timestamp = timestamp
        self.details = details
    }
}

/// What `recordLog` with several entries answers.
public struct LogReceipt: Sendable, Hashable, Decodable {
    public var traceIds: [String]
    public var accepted: Int
    public var firstSeq: UInt64
    public var lastSeq: UInt64
    /// The write's proof receipt (docs/api.md, "Custody proofs").
    public var receipt: WriteReceipt?
}

/// The receipt of an acknowledged write: the seq of its last event and the log's hash chain
/// value after it (64 hex digits). Keep it to check later that the log still holds the write:
/// `custody log verify --receipt SEQ:HEX`, or `GET /api/log/proof?seq=SEQ+1`.
public struct WriteReceipt: Sendable, Hashable, Codable, CustomStringConvertible {
    public var seq: UInt64
    public var chain: String

    public init(seq: UInt64, chain: String) {
        self.seq = seq
        self.chain = chain
    }

    /// A receipt as the `x-custody-receipt` header and gRPC metadata carry it, `SEQ:HEX`.
    public init?(header: String) {
        let parts = header.split(separator: ":")
        guard parts.count == 2, let seq = UInt64(parts[0]), parts[1].count == 64 else { return nil }
        self.init(seq: seq, chain: String(parts[1]))
    }

    /// `SEQ:HEX`.
    public var description: String { "\(seq):\(chain)" }
}

/// A recorded span, with its log position.
public struct SpanRecord: Sendable, Hashable, Decodable {
    public var seq: UInt64
    public var traceId: String
    public var spanId: String?
    public var parentSpanId: String?
    public var source: String
    public var stage: String
    public var operation: String
    public var taskUuid: String?
    public var durationMs: Double?
    public var timestamp: String
    public var details: JSON?
}

/// A trace's summary (docs/api.md "TraceSummary").
public struct TraceSummary: Sendable, Hashable, Decodable {
    public var traceId: String
    public var rootOperation: String
    public var start: String
    public var end: String
    public var durationMs: Double
    public var spanCount: Int
    public var errorCount: Int
    public var sources: [String]
    public var replayOf: String?
}

/// A page of trace search.
public struct TracePage: Sendable, Hashable, Decodable {
    public var traces: [TraceSummary]
    public var nextCursor: String?
}

/// `GET /api/traces/{id}`.
public struct TraceDocument: Sendable, Hashable, Decodable {
    public var traceId: String
    public var spans: [SpanRecord]
    public var summary: TraceSummary
    /// Present when retention deleted part of the trace: the spans before `firstSeq` are gone.
    public var retention: TraceRetention?
}

/// A trace's critical path (docs/api.md, "Trace analysis"): the spans that determined its
/// end-to-end latency, root first, with their time on the path.
public struct CriticalPathDocument: Sendable, Hashable, Decodable {
    public struct Step: Sendable, Hashable, Decodable {
        public var spanId: String?
        public var seq: UInt64
        public var source: String
        public var operation: String
        public var stage: String
        public var depth: Int
        /// The span's time on the path.
        public var selfMs: Double
        /// When the span started, from the trace's start.
        public var startOffsetMs: Double
        /// The stretches it holds the path for, `[from, to]` from the trace's start.
        public var sections: [[Double]]
    }

    public var traceId: String
    public var durationMs: Double
    public var path: [Step]
    /// Time on the path covered by no span (a trace with several top-level spans).
    public var gapMs: Double
    public var retention: TraceRetention?

    /// Time on the path by source (the answer's `by_source`, summed from ``path`` here: the
    /// decoder's snake-case conversion would change source names that hold an underscore).
    public var bySource: [String: Double] {
        path.reduce(into: [:]) { totals, step in totals[step.source, default: 0] += step.selfMs }
    }
}

/// The time series of a metrics query (`GET /api/metrics/query`; docs/analysis.md, "The query
/// language"). Decoded without the client's snake-case conversion: label names are the
/// server's own (`.attributes.user_id`).
public struct MetricsDocument: Sendable, Hashable, Decodable {
    public struct Series: Sendable, Hashable, Decodable {
        public var labels: [String: String]
        /// `[unix seconds, value]` pairs.
        public var points: [[Double]]
    }

    public var since: String
    public var until: String
    public var stepSeconds: Double
    public var series: [Series]

    enum CodingKeys: String, CodingKey {
        case since, until, series
        case stepSeconds = "step_seconds"
    }
}

/// The custody graph over a window (docs/analysis.md, "The custody graph").
public struct GraphDocument: Sendable, Hashable, Decodable {
    public struct Node: Sendable, Hashable, Decodable {
        public var source: String
        public var spans: Int64
        public var errors: Int64
        public var p50Ms: Double?
        public var p99Ms: Double?
    }

    public struct Edge: Sendable, Hashable, Decodable {
        public var from: String
        public var to: String
        public var calls: Int64
        public var errors: Int64
        public var p50Ms: Double?
        public var p99Ms: Double?
    }

    /// The window covered: whole minutes (RFC 3339).
    public var since: String
    public var until: String
    public var nodes: [Node]
    public var edges: [Edge]
}

/// A trace retention deleted part of (docs/api.md, "Storage lifecycle").
public struct TraceRetention: Sendable, Hashable, Decodable {
    public var partial: Bool
    public var firstSeq: UInt64
    public var note: String
}

/// How a replay runs.
public enum ReplayMode: String, Sendable, Hashable, Codable, CaseIterable {
    case dryRun = "dry-run"
    case live
}

/// What `replayTrace` answers.
public struct ReplayResult: Sendable, Hashable, Codable {
    public var newTrace: String
    public var fromTrace: String
    public var mode: ReplayMode
    public var speed: Double?
    public var spans: Int
    public var errors: Int?
    /// Live mode: by source, spans not dispatched because no worker of that source is configured.
    public var undispatched: [String: Int]?
    public var durationMs: Double
    public var status: String
}

/// One entry of `GET /api/replays`.
public struct ReplayRecord: Sendable, Hashable, Decodable {
    public var startedAt: String
    public var fromTrace: String
    public var newTrace: String
    public var mode: ReplayMode
    /// 0: as fast as possible; 1: the original pace.
    public var speed: Double
    public var status: String
    public var spans: Int
    public var durationMs: Double?
}

/// A GitHub operation (docs/api.md "GitHub"): pending in Custody's outbox, then succeeded with
/// GitHub's result or failed with the error.
public struct GitHubOperation: Sendable, Hashable, Decodable {
    public var id: String
    /// `upsert_file`, `open_pr` or `create_issue`.
    public var kind: String
    /// `pending`, `succeeded` or `failed`.
    public var status: String
    public var params: JSON
    public var attempts: Int
    public var result: JSON?
    public var error: JSON?
    public var idempotencyKey: String
    public var traceId: String
    public var requestedAt: String
    public var updatedAt: String
    public var nextAttemptAt: String?

    public var isFinished: Bool { status != "pending" }
}
