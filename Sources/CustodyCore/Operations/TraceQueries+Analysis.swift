extension TraceQueries {
    /// The critical path of a trace from the full history (docs/analysis.md, "Critical path"):
    /// the errors of ``getTrace(_:)``; after retention, the path of what is left, with
    /// `retention` saying so.
    public func criticalPath(_ traceId: String) async throws(CoreError) -> CriticalPath {
        let trace = try await getTrace(traceId)
        var path = CriticalPath(traceId: trace.summary.traceId, spans: trace.spans)
        path.retention = trace.retention
        return path
    }
}

extension TraceQueries {
    /// The longest window ``graph(since:until:source:)`` answers: 31 days.
    public static let longestGraphWindow: Int64 = 31 * 24 * 60 * GraphProjection.nanosecondsPerMinute

    /// The custody graph over a window (docs/analysis.md, "The custody graph"): `until` defaults
    /// to now, `since` to an hour before `until`; `invalid_argument` when `since` is after
    /// `until` or the window is longer than ``longestGraphWindow``.
    public func graph(since: Int64?, until: Int64?, source: String?) async throws(CoreError) -> CustodyGraph {
        let until = until ?? context.now()
        let since = since ?? until - 60 * GraphProjection.nanosecondsPerMinute
        guard since <= until else { throw CoreError.invalidArgument("since", "must not be after until") }
        guard until - since <= Self.longestGraphWindow else {
            throw CoreError.invalidArgument("since", "the window may be at most 31 days long: ask for a later since or an earlier until")
        }
        if let source { _ = try SpanInput.check(source, "source", maximum: 128) }
        try await context.awaitProjections()
        let (first, last) = (GraphProjection.minute(ofTimestamp: since), GraphProjection.minute(ofTimestamp: until))
        do {
            let window = try await context.store.graph(fromMinute: first, throughMinute: last)
            return CustodyGraph(window, fromMinute: first, throughMinute: last, source: source)
        } catch {
            throw CoreError.internal("reading the custody graph failed", error)
        }
    }
}
