/// The time series a metrics query answers (docs/analysis.md, "The query language"): the spans
/// it matched, grouped by its labels and counted per step of the window.
///
/// Rules:
/// - A span counts in the step holding its `timestamp`; a point's time is its step's start.
/// - `rate()` is spans per second of the step, `count_over_time()` spans per step: both have a
///   point for every step, 0 included. `avg_over_time(duration)` and
///   `quantile_over_time(duration, q…)` (nearest rank, one series per `q`, labelled `quantile`)
///   have a point for each step with a span that has a duration.
/// - A label a span lacks (a `details` path) is the empty text; a `details` value that is not
///   text is its JSON.
public struct MetricSeriesSet: Sendable {
    public struct Point: Sendable, Hashable {
        /// The step's start, in nanoseconds since the epoch.
        public var at: Int64
        public var value: Double
    }

    public struct Series: Sendable, Hashable {
        public var labels: [String: String]
        public var points: [Point]
    }

    public let metric: MetricFunction
    public let since: Int64
    public let step: Int64
    public let points: Int
    /// Per label set, per step: the matched spans' durations (nil for a span without one).
    private var groups: [[String: String]: [Int: [Double?]]] = [:]

    init(metric: MetricFunction, since: Int64, step: Int64, points: Int) {
        self.metric = metric
        self.since = since
        self.step = step
        self.points = points
    }

    mutating func add(_ span: Span) {
        let index = Int((span.timestamp - since) / step)
        guard (0..<points).contains(index) else { return }
        var labels: [String: String] = [:]
        for label in metric.groupedBy {
            switch label {
            case .source: labels["source"] = span.source
            case .operation: labels["operation"] = span.operation
            case .stage: labels["stage"] = span.stage
            case .detail(let path):
                let value = TraceQueryEvaluator.value(at: path, in: span.details?.jsonValue)
                let text: String
                switch value {
                case .string(let string)?: text = string
                case nil: text = ""
                case let other?: text = other.jsonText.description
                }
                labels["." + path.joined(separator: ".")] = text
            }
        }
        groups[labels, default: [:]][index, default: []].append(span.durationMs)
    }

    /// The series, ordered by their labels.
    public var series: [Series] {
        let seconds = Double(step) / 1e9
        var result: [Series] = []
        for (labels, steps) in groups {
            func at(_ index: Int) -> Int64 { since + Int64(index) * step }
            switch metric.kind {
            case .rate, .countOverTime:
                let scale = metric.kind == .rate ? 1 / seconds : 1
                let points = (0..<points).map { Point(at: at($0), value: Double(steps[$0]?.count ?? 0) * scale) }
                result.append(Series(labels: labels, points: points))
            case .avgOverTime:
                let points = steps.keys.sorted().compactMap { index -> Point? in
                    let durations = steps[index]?.compactMap { $0 } ?? []
                    return durations.isEmpty ? nil : Point(at: at(index), value: durations.reduce(0, +) / Double(durations.count))
                }
                result.append(Series(labels: labels, points: points))
            case .quantileOverTime(let quantiles):
                for q in quantiles {
                    let points = steps.keys.sorted().compactMap { index -> Point? in
                        let durations = (steps[index]?.compactMap { $0 } ?? []).sorted()
                        guard !durations.isEmpty else { return nil }
                        let rank = max(1, Int((q * Double(durations.count)).rounded(.up)))
                        return Point(at: at(index), value: durations[min(rank, durations.count) - 1])
                    }
                    var labelled = labels
                    labelled["quantile"] = Self.format(q)
                    result.append(Series(labels: labelled, points: points))
                }
            }
        }
        return result.sorted { $0.labels.sorted(by: { $0.key < $1.key }).description < $1.labels.sorted(by: { $0.key < $1.key }).description }
    }

    static func format(_ q: Double) -> String {
        let text = String(q)
        return text.hasSuffix(".0") ? String(text.dropLast(2)) : text
    }

    /// docs/api.md's answer: `{"since", "until", "step_seconds", "series": [{"labels", "points":
    /// [[unix seconds, value]…]}]}`.
    public var jsonValue: JSONValue {
        .object([
            "since": .string(RFC3339.format(since)),
            "until": .string(RFC3339.format(since + Int64(points) * step)),
            "step_seconds": .number(Double(step) / 1e9),
            "series": .array(
                series.map { series in
                    .object([
                        "labels": .object(series.labels.mapValues(JSONValue.string)),
                        "points": .array(series.points.map { .array([.number(Double($0.at) / 1e9), .number($0.value)]) }),
                    ])
                }
            ),
        ])
    }
}
