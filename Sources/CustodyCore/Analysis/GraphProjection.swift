import CustodyLog

/// The custody graph as the projector keeps it (docs/analysis.md, "The custody graph"): per
/// minute, each source's spans, errors and durations (`graph_nodes`), and each hand-off from
/// one source to another — a span whose parent is a span of another source — with its calls,
/// errors and durations (`graph_edges`).
///
/// Rules:
/// - A span's minute is that of its `timestamp`. A hand-off is counted once, in the child's
///   minute, with the child's duration and error, when the later of the two spans is applied:
///   parent and child may come in any order, in one batch or many.
/// - A child's parent is the first span recorded with that span id in the trace (the critical
///   path's rule). A parent of the same source is no hand-off; a parent never recorded, none.
/// - What each trace's spans have linked so far (``TraceLinks``) is a function of its applied
///   spans alone: a store holds the recent traces' links in memory and reads an older trace's
///   from its spans, so the rows come out the same whatever the batches and restarts — equal to
///   a recomputation over `operation_logs` (the tests do it).
public enum GraphProjection {
    /// Nanoseconds in a minute: span timestamps are in nanoseconds.
    static let nanosecondsPerMinute: Int64 = 60_000_000_000

    /// The minute (since the epoch) of a timestamp in nanoseconds, rounded down.
    public static func minute(ofTimestamp timestamp: Int64) -> Int64 {
        let (quotient, remainder) = timestamp.quotientAndRemainder(dividingBy: nanosecondsPerMinute)
        return remainder < 0 ? quotient - 1 : quotient
    }

    /// A graph row's key: a node when `from` is nil, else the edge `from → source`.
    public struct Key: Hashable, Sendable {
        public var minute: Int64
        public var from: String?
        public var source: String

        public init(minute: Int64, from: String?, source: String) {
            self.minute = minute
            self.from = from
            self.source = source
        }
    }

    /// What a row counts: spans (calls for an edge), errors, durations.
    public struct Tally: Hashable, Sendable {
        public var count: Int64 = 0
        public var errors: Int64 = 0
        public var durations = LatencyHistogram()

        public init(count: Int64 = 0, errors: Int64 = 0, durations: LatencyHistogram = LatencyHistogram()) {
            self.count = count
            self.errors = errors
            self.durations = durations
        }

        mutating func add(_ span: Call) {
            count += 1
            if span.isError { errors += 1 }
            if let duration = span.durationMs { durations.add(ms: duration) }
        }

        public mutating func merge(_ other: Tally) {
            count += other.count
            errors += other.errors
            durations.merge(other.durations)
        }
    }

    /// A span as the graph counts it.
    public struct Call: Hashable, Sendable {
        public var source: String
        public var minute: Int64
        public var durationMs: Double?
        public var isError: Bool

        public init(source: String, minute: Int64, durationMs: Double?, isError: Bool) {
            self.source = source
            self.minute = minute
            self.durationMs = durationMs
            self.isError = isError
        }
    }

    /// A node (`from` nil) or an edge `from → source`, over a window.
    public struct Pair: Hashable, Sendable {
        public var from: String?
        public var source: String

        public init(from: String?, source: String) {
            self.from = from
            self.source = source
        }
    }

    /// The graph's rows over a window of minutes, summed per node and edge.
    public struct Window: Sendable {
        public var tallies: [Pair: Tally] = [:]

        public init() {}

        /// Adds one stored row; throws when its `durations` do not read.
        public mutating func add(from: String?, source: String, count: Int64, errors: Int64, durations: String) throws {
            guard let histogram = LatencyHistogram(text: durations) else { throw GraphRowUnreadable(durations: durations) }
            tallies[Pair(from: from, source: source), default: Tally()].merge(Tally(count: count, errors: errors, durations: histogram))
        }
    }

    /// A stored graph row whose durations are not ``LatencyHistogram/text``.
    public struct GraphRowUnreadable: Error, CustomStringConvertible {
        public var durations: String
        public var description: String { "a custody graph row's durations do not read: \(durations.prefix(80))" }
    }

    /// What a batch adds to the graph's rows, and its traces' links after it.
    public struct Changes: Sendable {
        /// What to add to each row.
        public var rows: [Key: Tally] = [:]
        /// The links of every trace the batch had spans of, as they are once it commits.
        public var links: [String: TraceLinks] = [:]

        public init() {}

        mutating func count(_ call: Call, from: String?) {
            rows[Key(minute: call.minute, from: from, source: call.source), default: Tally()].add(call)
        }
    }

    /// Folds a batch's spans into the graph. `linksBefore(slot)` gives the links of the trace in
    /// `grouping.traces[slot]` as committed before the batch: empty for a trace new in the
    /// batch, from memory or from its stored spans otherwise; it is asked once per trace.
    static func fold(
        _ events: [Event],
        grouping: ProjectionBatch.SpanGrouping,
        linksBefore: (Int) throws -> TraceLinks
    ) rethrows -> Changes {
        var changes = Changes()
        var links = [TraceLinks?](repeating: nil, count: grouping.traces.count)
        for index in events.indices where grouping.slot[index] >= 0 {
            guard case .span(let span) = events[index].body else { continue }
            let slot = Int(grouping.slot[index])
            // Taken out of the array while it changes: a copy left there would make every span
            // copy the trace's dictionaries (quadratic in a trace's spans).
            var trace = try links[slot].take() ?? linksBefore(slot)
            trace.add(span, isError: grouping.isError[index], into: &changes)
            links[slot] = trace
        }
        for slot in grouping.traces.indices {
            if let trace = links[slot] { changes.links[grouping.traces[slot].part.summary.traceId] = trace }
        }
        return changes
    }
}

/// Which spans of one trace are recorded and which wait for their parent: what the custody graph
/// needs to count a hand-off whichever of the two spans is applied first (``GraphProjection``).
public struct TraceLinks: Sendable, Hashable {
    /// The source of each span id, as first recorded.
    var sources: [String: String] = [:]
    /// Spans whose parent is not recorded yet, by the parent's span id.
    var waiting: [String: [GraphProjection.Call]] = [:]

    /// About how many spans these links hold (what bounds ``TraceLinksCache``).
    var spanCount: Int { max(1, sources.count + waiting.count) }

    public init() {}

    /// A stored span as the links need it.
    struct StoredSpan {
        var spanId: String?
        var parentSpanId: String?
        var call: GraphProjection.Call
    }

    /// The links of a trace with these spans, applied in this order (seq order).
    init(replaying spans: [StoredSpan]) {
        var ignored = GraphProjection.Changes()
        for span in spans { add(span, into: &ignored) }
    }

    mutating func add(_ span: Span, isError: Bool, into changes: inout GraphProjection.Changes) {
        let call = GraphProjection.Call(
            source: span.source,
            minute: GraphProjection.minute(ofTimestamp: span.timestamp),
            durationMs: span.durationMs,
            isError: isError
        )
        add(StoredSpan(spanId: span.spanId, parentSpanId: span.parentSpanId, call: call), into: &changes)
    }

    /// Applies one span: counts its node, the hand-offs to children waiting for it, and its own
    /// hand-off when its parent is recorded (else it waits).
    mutating func add(_ span: StoredSpan, into changes: inout GraphProjection.Changes) {
        let call = span.call
        changes.count(call, from: nil)
        if let spanId = span.spanId, sources[spanId] == nil {
            sources[spanId] = call.source
            for child in waiting.removeValue(forKey: spanId) ?? [] where child.source != call.source {
                changes.count(child, from: call.source)
            }
        }
        guard let parent = span.parentSpanId else { return }
        if let parentSource = sources[parent] {
            if parentSource != call.source { changes.count(call, from: parentSource) }
        } else {
            waiting[parent, default: []].append(call)
        }
    }
}

/// The links of recently applied traces, in memory, bounded by the spans they hold: two
/// generations of traces holding at most `capacity` spans each (so its memory does not grow with
/// the ingest rate, as a bound in traces did: docs/benchmarks.md P9); a trace looked up in the
/// older generation moves to the newer one, and when the newer fills up the older is dropped. A
/// trace not found is read from its spans.
struct TraceLinksCache: Sendable {
    let capacity: Int
    private var newer: [String: TraceLinks] = [:]
    private var older: [String: TraceLinks] = [:]
    /// The spans the newer generation's traces held when recorded.
    private var newerSpans = 0

    init(capacity: Int = 100_000) { self.capacity = max(1, capacity) }

    func links(of traceId: String) -> TraceLinks? { newer[traceId] ?? older[traceId] }

    /// Records what a committed batch left.
    mutating func record(_ links: [String: TraceLinks]) {
        for (traceId, trace) in links {
            if newerSpans >= capacity {
                older = newer
                newer = [:]
                newerSpans = 0
            }
            newer[traceId] = trace
            newerSpans += trace.spanCount
            if !older.isEmpty { older.removeValue(forKey: traceId) }
        }
    }

    mutating func removeAll() {
        newer = [:]
        older = [:]
        newerSpans = 0
    }
}
