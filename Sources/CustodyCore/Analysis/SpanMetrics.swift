import Synchronization

/// RED metrics of the spans in the log — rate, errors, duration — per (source, operation)
/// (docs/analysis.md, "Span metrics"): what `/metrics` shows as `custody_spans_total`,
/// `custody_span_errors_total` and `custody_span_duration_seconds`.
///
/// Rules:
/// - Counts every span the node reads from the log after it started (the same spans on every
///   node of a cluster: every node follows the whole log), once.
/// - An error span is one of docs/api.md's rule (``Span/isError``). A span without a duration is
///   counted, but not in the duration histogram.
/// - **Cardinality is capped.** A source holds at most ``Limits/operationsPerSource`` operations:
///   the spans of any operation past them go to one series with operation ``overflow``. Past
///   ``Limits/sources`` sources, spans of a new source go to the series of source ``overflow``.
public final class SpanMetrics: Sendable {
    public struct Limits: Sendable, Hashable {
        public var operationsPerSource: Int
        public var sources: Int

        public init(operationsPerSource: Int = 200, sources: Int = 500) {
            self.operationsPerSource = max(1, operationsPerSource)
            self.sources = max(1, sources)
        }
    }

    /// The source or operation of the series that takes what is past the limits.
    public static let overflow = "__other__"

    /// The histogram's upper bounds, in seconds (the last bucket, `+Inf`, is implied).
    public static let bucketBounds: [Double] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300]

    /// One (source, operation) series.
    public struct Series: Sendable, Hashable {
        public var source: String
        public var operation: String
        public var spans: Int64 = 0
        public var errors: Int64 = 0
        /// Spans with a duration per bucket of ``bucketBounds`` (not cumulative), and `+Inf` last.
        public var buckets = [Int64](repeating: 0, count: SpanMetrics.bucketBounds.count + 1)
        /// The sum of those spans' durations, in seconds.
        public var durationSum: Double = 0

        /// How many spans had a duration.
        public var durations: Int64 { buckets.reduce(0, +) }
    }

    private struct Key: Hashable {
        var source: String
        var operation: String
    }

    private struct State {
        var series: [Key: Series] = [:]
        var operations: [String: Int] = [:]
    }

    public let limits: Limits
    private let state = Mutex(State())

    public init(limits: Limits = Limits()) {
        self.limits = limits
    }

    /// Counts the spans among `events`.
    public func record(_ events: [Event]) {
        state.withLock { state in
            for event in events {
                guard case .span(let span) = event.body else { continue }
                let key = Self.key(span, in: &state, limits: limits)
                var series = state.series[key] ?? Series(source: key.source, operation: key.operation)
                series.spans += 1
                if span.isError { series.errors += 1 }
                if let milliseconds = span.durationMs {
                    let seconds = milliseconds / 1000
                    series.buckets[Self.bucket(of: seconds)] += 1
                    series.durationSum += seconds
                }
                state.series[key] = series
            }
        }
    }

    /// Every series, by source then operation.
    public func snapshot() -> [Series] {
        state.withLock { Array($0.series.values) }.sorted { ($0.source, $0.operation) < ($1.source, $1.operation) }
    }

    private static func key(_ span: Span, in state: inout State, limits: Limits) -> Key {
        var source = span.source
        if state.operations[source] == nil {
            if state.operations.count >= limits.sources { source = overflow }
            if state.operations[source] == nil { state.operations[source] = 0 }
        }
        let key = Key(source: source, operation: span.operation)
        guard state.series[key] == nil else { return key }
        guard state.operations[source, default: 0] < limits.operationsPerSource else { return Key(source: source, operation: overflow) }
        state.operations[source, default: 0] += 1
        return key
    }

    /// The index of the bucket a duration of `seconds` falls in (`le` is inclusive).
    static func bucket(of seconds: Double) -> Int {
        var low = 0
        var high = bucketBounds.count
        while low < high {
            let middle = (low + high) / 2
            if bucketBounds[middle] < seconds { low = middle + 1 } else { high = middle }
        }
        return low
    }
}
