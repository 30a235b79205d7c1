import W3CTraceContext

/// W3C `traceparent` headers for Custody trace ids: a trace id that is 32 hex digits, or a UUID
/// (its 32 hex digits), is carried as the W3C trace id; others travel in `x-trace-id` alone.
public enum TraceParent {
    /// A `traceparent` value for `traceId` with a new random span id, or nil when the id cannot
    /// be one.
    public static func header(forTrace traceId: String) -> String? {
        let hex = traceId.lowercased().filter { $0 != "-" }
        guard hex.utf8.count == 32, hex.utf8.allSatisfy({ (48...57).contains($0) || (97...102).contains($0) }),
            traceId.utf8.count == 32 || traceId.utf8.count == 36
        else { return nil }
        let span = SpanID.random().description
        guard let context = try? TraceContext(traceParentHeaderValue: "00-\(hex)-\(span)-01") else { return nil }
        return context.traceParentHeaderValue
    }
}
