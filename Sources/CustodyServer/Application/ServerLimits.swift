/// The size limits of the HTTP API (docs/api.md "Envelope and errors", docs/benchmarks.md R6/R8). Every input
/// is bounded: the body, the JSON nesting depth, the entries of a batch (``LogOperations``) and
/// each field (``SpanInput``).
public struct ServerLimits: Sendable {
    /// The largest request body read (docs/api.md: 8 MiB).
    public var maximumBodyBytes = 8 << 20
    /// The largest OTLP export body, after decompression (docs/api.md: 20 MiB).
    public var maximumOTLPBytes = 20 << 20
    /// JSON nested deeper than this is refused before it is parsed (a parser's recursion must not
    /// be the client's to choose).
    public var maximumJSONDepth = 64
    /// Ingest requests (POST /api/logs) being processed at once; beyond it a request gets 429 with
    /// `Retry-After` instead of queueing without bound.
    public var maximumConcurrentIngest = 256
    /// Spans buffered for one live-stream client; beyond it the client is sent `lagged`.
    public var liveClientBuffer = 4096
    /// How often a live-stream client is sent `{"event": "ping"}`.
    public var livePingInterval: Duration = .seconds(10)
    /// A connection that has sent bytes (or just opened) and got nothing back for this long is
    /// closed: a request must arrive whole, and be answered, within it (slowloris).
    public var requestDeadline: Duration = .seconds(30)
    /// A connection that sends nothing for this long is closed (slow or stalled clients).
    public var idleTimeoutSeconds: Int64 = 60

    public static let `default` = ServerLimits()

    public init() {}
}
