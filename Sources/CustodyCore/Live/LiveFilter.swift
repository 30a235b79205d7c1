/// Which spans a live-stream client wants (docs/api.md "Live stream"): each non-empty set must contain
/// the span's value; an empty set lets everything through.
public struct LiveFilter: Sendable, Hashable {
    public var sources: Set<String>
    public var stages: Set<String>
    public var operations: Set<String>
    public var traceIds: Set<String>

    public init(sources: Set<String> = [], stages: Set<String> = [], operations: Set<String> = [], traceIds: Set<String> = []) {
        self.sources = sources
        self.stages = stages
        self.operations = operations
        self.traceIds = traceIds
    }

    public func matches(_ span: Span) -> Bool {
        (sources.isEmpty || sources.contains(span.source)) && (stages.isEmpty || stages.contains(span.stage))
            && (operations.isEmpty || operations.contains(span.operation)) && (traceIds.isEmpty || traceIds.contains(span.traceId))
    }
}
