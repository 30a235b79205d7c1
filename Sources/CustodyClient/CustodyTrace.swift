/// The trace a worker's code is running in: set by ``WorkerTracer/withTrace(_:operation:_:)`` for
/// everything the body does (task-local, so concurrent flows keep their own), and sent by every
/// ``CustodyClient`` call as `x-trace-id` and `traceparent`.
public struct CustodyTrace: Sendable, Hashable {
    public var traceId: String
    /// The span the code is inside: the parent of the spans it records.
    public var spanId: String?

    public init(traceId: String, spanId: String? = nil) {
        self.traceId = traceId
        self.spanId = spanId
    }

    @TaskLocal public static var current: CustodyTrace?

    /// A new random span id (16 lower-case hex digits, as OpenTelemetry's).
    public static func newSpanId() -> String {
        let value = UInt64.random(in: 1...UInt64.max)
        let hex = String(value, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
}
