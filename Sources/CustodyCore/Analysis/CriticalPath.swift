/// The critical path of a trace (docs/analysis.md, "Critical path"): the chain of spans that
/// determined its end-to-end latency, found from parent links and timing alone.
///
/// Rules:
/// - **The tree.** A span's parent is the span of the trace whose `span_id` is its
///   `parent_span_id` (of several spans with one id, the first recorded). A link that closes a
///   cycle is dropped. A span left without a parent — none given, or one not in the trace — is
///   nested by time among the other such spans of its source: its parent is the one that encloses
///   it (when several do, the nearest in a sweep by start time). What is still without a parent
///   is top-level.
/// - **A span lasts until its children have ended.** A child that outlives its parent, or starts
///   before it (clocks of two sources disagree), widens the parent's interval: the parent waited
///   for it. So the path's times add up to the trace's duration (its first start to its last
///   end), which Jaeger's trimming of such children does not give.
/// - **The walk.** From the end of the root (a trace with several top-level spans has a virtual
///   root over the whole trace), the child that ended last at or before the point reached is on
///   the path (on a tie: the one that started last, then the one recorded last); its own time is
///   walked the same way, and the walk goes on in the parent from that child's start. The time
///   of a span covered by no child on the path is its time on the path. Under a virtual root,
///   time covered by no span is the gap.
/// - A span is on the path when it has time on it, or a descendant on the path does: an instant
///   span the walk passes through is not.
public struct CriticalPath: Sendable, Hashable {
    /// One span on the path.
    public struct Step: Sendable, Hashable {
        public var record: SpanRecord
        /// The span's depth in the tree (top-level spans: 0).
        public var depth: Int
        /// Its time on the path, in nanoseconds.
        public var selfNanoseconds: Int64
        /// The stretches of the trace it holds the path for, as nanoseconds from the trace's start,
        /// earliest first.
        public var sections: [Range<Int64>]
    }

    public var traceId: String
    /// The trace's first start and last end (nanoseconds since the Unix epoch).
    public var start: Int64
    public var end: Int64
    /// Root first, then down by depth (by start, then seq, within a depth).
    public var steps: [Step]
    /// Time on the path covered by no span (only under several top-level spans), nanoseconds.
    public var gapNanoseconds: Int64
    /// Set when retention deleted some of the trace's spans: the path is that of what is left.
    public var retention: TraceRetention?

    public var durationNanoseconds: Int64 { end - start }

    /// Time on the path by source, nanoseconds.
    public var bySource: [String: Int64] {
        var totals: [String: Int64] = [:]
        for step in steps { totals[step.record.span.source, default: 0] += step.selfNanoseconds }
        return totals
    }

    /// The critical path of the trace made of `spans` (any order).
    public init(traceId: String, spans: [SpanRecord]) {
        self.traceId = traceId
        let tree = SpanTree(spans)
        start = tree.traceStart
        end = tree.traceEnd
        var walk = CriticalPathWalk(tree: tree)
        walk.run()
        gapNanoseconds = walk.gap
        var onPath = [Bool](repeating: false, count: spans.count)
        for node in walk.visited.reversed() where walk.selfTime[node] > 0 || onPath[node] {
            onPath[node] = true
            if let parent = tree.parent[node] { onPath[parent] = true }
        }
        if !onPath.contains(true), tree.topLevel.count == 1 { onPath[tree.topLevel[0]] = true }
        var steps: [Step] = []
        for node in walk.visited where onPath[node] {
            let sections = walk.sections[node].reversed().map { ($0.lowerBound - tree.traceStart)..<($0.upperBound - tree.traceStart) }
            steps.append(Step(record: tree.records[node], depth: tree.depth[node], selfNanoseconds: walk.selfTime[node], sections: sections))
        }
        steps.sort { ($0.depth, $0.record.span.timestamp, $0.record.seq) < ($1.depth, $1.record.span.timestamp, $1.record.seq) }
        self.steps = steps
    }
}

/// A trace's spans as a tree (``CriticalPath``'s rules), with each span's interval widened to
/// its descendants'.
struct SpanTree {
    let records: [SpanRecord]
    /// The parent of each span (an index into `records`), nil for a top-level span.
    private(set) var parent: [Int?]
    private(set) var children: [[Int]]
    private(set) var depth: [Int]
    /// Each span's start and end, widened to its descendants'.
    private(set) var spanStart: [Int64]
    private(set) var spanEnd: [Int64]
    private(set) var topLevel: [Int] = []

    init(_ records: [SpanRecord]) {
        self.records = records
        let count = records.count
        parent = Array(repeating: nil, count: count)
        children = Array(repeating: [], count: count)
        depth = Array(repeating: 0, count: count)
        spanStart = records.map(\.span.timestamp)
        spanEnd = records.map(\.span.end)
        linkByIds()
        dropCycles()
        nestByTime()
        for node in 0..<count {
            if let parent = parent[node] { children[parent].append(node) } else { topLevel.append(node) }
        }
        widen()
    }

    /// The trace's first start and last end.
    var traceStart: Int64 { topLevel.lazy.map { self.spanStart[$0] }.min() ?? 0 }
    var traceEnd: Int64 { topLevel.lazy.map { self.spanEnd[$0] }.max() ?? 0 }

    /// Parents by `parent_span_id`; of several spans with one id, the first recorded.
    private mutating func linkByIds() {
        var bySpanId: [String: Int] = [:]
        for (index, record) in records.enumerated() {
            guard let spanId = record.span.spanId else { continue }
            if let known = bySpanId[spanId], records[known].seq < record.seq { continue }
            bySpanId[spanId] = index
        }
        for (index, record) in records.enumerated() {
            if let parentId = record.span.parentSpanId, let found = bySpanId[parentId], found != index { parent[index] = found }
        }
    }

    /// Drops the link that closes each cycle: following parents from a span must end.
    private mutating func dropCycles() {
        // 0: not seen, 1: on the chain being followed, 2: done.
        var state = [UInt8](repeating: 0, count: records.count)
        var chain: [Int] = []
        for first in records.indices where state[first] == 0 {
            var node = first
            while true {
                state[node] = 1
                chain.append(node)
                guard let next = parent[node] else { break }
                if state[next] == 1 {
                    parent[node] = nil
                    break
                }
                if state[next] == 2 { break }
                node = next
            }
            for node in chain { state[node] = 2 }
            chain.removeAll(keepingCapacity: true)
        }
    }

    /// Nests the spans still without a parent by time, per source: sorted by start (then the
    /// longer first, then by seq), each is the child of the nearest one before it that encloses it.
    private mutating func nestByTime() {
        var bySource: [String: [Int]] = [:]
        for index in records.indices where parent[index] == nil { bySource[records[index].span.source, default: []].append(index) }
        for (_, indices) in bySource where indices.count > 1 {
            let sorted = indices.sorted { a, b in
                if spanStart[a] != spanStart[b] { return spanStart[a] < spanStart[b] }
                if spanEnd[a] != spanEnd[b] { return spanEnd[a] > spanEnd[b] }
                return records[a].seq < records[b].seq
            }
            var open: [Int] = []
            for node in sorted {
                while let last = open.last, spanEnd[last] < spanEnd[node] { open.removeLast() }
                parent[node] = open.last
                open.append(node)
            }
        }
    }

    /// Depths, and every interval widened to its descendants' (deepest first).
    private mutating func widen() {
        var order: [Int] = []
        order.reserveCapacity(records.count)
        var pending = topLevel
        while let node = pending.popLast() {
            order.append(node)
            for child in children[node] {
                depth[child] = depth[node] + 1
                pending.append(child)
            }
        }
        for node in order.reversed() {
            guard let parent = parent[node] else { continue }
            spanStart[parent] = min(spanStart[parent], spanStart[node])
            spanEnd[parent] = max(spanEnd[parent], spanEnd[node])
        }
    }
}

/// The walk back from the root's end (``CriticalPath``'s rules), without recursion: a trace may
/// nest spans many thousands deep.
struct CriticalPathWalk {
    let tree: SpanTree
    /// The spans the walk entered, in the order it entered them.
    private(set) var visited: [Int] = []
    /// Each span's time on the path, and its sections (latest first).
    private(set) var selfTime: [Int64]
    private(set) var sections: [[Range<Int64>]]
    private(set) var gap: Int64 = 0

    init(tree: SpanTree) {
        self.tree = tree
        selfTime = Array(repeating: 0, count: tree.records.count)
        sections = Array(repeating: [], count: tree.records.count)
    }

    private struct Frame {
        /// A span, or nil for the virtual root.
        var node: Int?
        /// Its children, the last to end first.
        var children: [Int]
        var next = 0
        var point: Int64
        var start: Int64
    }

    private func ordered(_ nodes: [Int]) -> [Int] {
        nodes.sorted { a, b in
            (tree.spanEnd[a], tree.spanStart[a], tree.records[a].seq) > (tree.spanEnd[b], tree.spanStart[b], tree.records[b].seq)
        }
    }

    private func frame(_ node: Int) -> Frame {
        Frame(node: node, children: ordered(tree.children[node]), point: tree.spanEnd[node], start: tree.spanStart[node])
    }

    mutating func run() {
        guard !tree.topLevel.isEmpty else { return }
        var stack: [Frame]
        if tree.topLevel.count == 1 {
            stack = [frame(tree.topLevel[0])]
            visited.append(tree.topLevel[0])
        } else {
            stack = [Frame(node: nil, children: ordered(tree.topLevel), point: tree.traceEnd, start: tree.traceStart)]
        }
        while var top = stack.popLast() {
            while top.next < top.children.count, tree.spanEnd[top.children[top.next]] > top.point { top.next += 1 }
            if top.next < top.children.count {
                let child = top.children[top.next]
                top.next += 1
                hold(top.node, tree.spanEnd[child]..<top.point)
                top.point = tree.spanStart[child]
                stack.append(top)
                stack.append(frame(child))
                visited.append(child)
            } else {
                hold(top.node, top.start..<top.point)
            }
        }
    }

    private mutating func hold(_ node: Int?, _ section: Range<Int64>) {
        guard !section.isEmpty else { return }
        guard let node else {
            gap += section.upperBound - section.lowerBound
            return
        }
        selfTime[node] += section.upperBound - section.lowerBound
        sections[node].append(section)
    }
}
