/// Who handed work to whom over a window (docs/analysis.md, "The custody graph"): each source
/// with its spans, and each hand-off between two sources with its calls, errors and latency —
/// read from the graph's rows per minute (``GraphProjection``), never from the spans.
///
/// Rules:
/// - The window is whole minutes: from the minute holding `since` through the one holding
///   `until`; ``since`` and ``until`` say what was covered.
/// - A node's latency is its spans' durations; an edge's, the children's (the called side).
///   Percentiles are nearest-rank, within 4.4% (``LatencyHistogram``); nil with no duration.
/// - With a `source`, the edges into and out of it, and the nodes they join (it included).
/// - Nodes by spans, edges by calls, most first; ties by name.
public struct CustodyGraph: Sendable, Hashable {
    public struct Node: Sendable, Hashable {
        public var source: String
        public var spans: Int64
        public var errors: Int64
        public var p50Ms: Double?
        public var p99Ms: Double?
    }

    public struct Edge: Sendable, Hashable {
        public var from: String
        public var to: String
        public var calls: Int64
        public var errors: Int64
        public var p50Ms: Double?
        public var p99Ms: Double?
    }

    /// The covered window, in nanoseconds since the epoch: the start of the first minute and the
    /// end of the last.
    public var since: Int64
    public var until: Int64
    public var nodes: [Node]
    public var edges: [Edge]

    /// The graph of a window's rows, minutes `first` through `last`.
    public init(_ window: GraphProjection.Window, fromMinute first: Int64, throughMinute last: Int64, source: String? = nil) {
        since = first * GraphProjection.nanosecondsPerMinute
        until = (last + 1) * GraphProjection.nanosecondsPerMinute
        var edges: [Edge] = []
        var nodes: [String: Node] = [:]
        for (pair, tally) in window.tallies {
            if let from = pair.from {
                guard source == nil || from == source || pair.source == source else { continue }
                edges.append(
                    Edge(
                        from: from,
                        to: pair.source,
                        calls: tally.count,
                        errors: tally.errors,
                        p50Ms: tally.durations.quantileMs(0.5),
                        p99Ms: tally.durations.quantileMs(0.99)
                    )
                )
            } else {
                nodes[pair.source] = Node(
                    source: pair.source,
                    spans: tally.count,
                    errors: tally.errors,
                    p50Ms: tally.durations.quantileMs(0.5),
                    p99Ms: tally.durations.quantileMs(0.99)
                )
            }
        }
        if let source {
            let joined = Set(edges.flatMap { [$0.from, $0.to] }).union([source])
            nodes = nodes.filter { joined.contains($0.key) }
        }
        self.nodes = nodes.values.sorted { ($1.spans, $0.source) < ($0.spans, $1.source) }
        self.edges = edges.sorted { ($1.calls, $0.from, $0.to) < ($0.calls, $1.from, $1.to) }
    }

    /// docs/api.md's graph.
    public var jsonValue: JSONValue {
        func milliseconds(_ value: Double?) -> JSONValue { value.map { .number(($0 * 1000).rounded() / 1000) } ?? .null }
        return .object([
            "since": .string(RFC3339.format(since)),
            "until": .string(RFC3339.format(until)),
            "nodes": .array(
                nodes.map {
                    .object([
                        "source": .string($0.source), "spans": .integer($0.spans), "errors": .integer($0.errors),
                        "p50_ms": milliseconds($0.p50Ms), "p99_ms": milliseconds($0.p99Ms),
                    ])
                }
            ),
            "edges": .array(
                edges.map {
                    .object([
                        "from": .string($0.from), "to": .string($0.to), "calls": .integer($0.calls), "errors": .integer($0.errors),
                        "p50_ms": milliseconds($0.p50Ms), "p99_ms": milliseconds($0.p99Ms),
                    ])
                }
            ),
        ])
    }
}
