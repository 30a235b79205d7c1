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
