/// A parsed query made ready to run over traces (docs/analysis.md, "The query language"): its
/// regular expressions compiled once, then ``matchingSpans(_:)`` per trace.
///
/// Rules (what a query means):
/// - `{A}` matches the spans of a trace that satisfy A; the trace matches when any does.
///   `{A} && {B}`: both match in the trace, and the result is the spans of both; `{A} || {B}`:
///   the spans of either. `{A} > {B}`: the B spans whose parent is an A span; `{A} >> {B}`: the
///   B spans with an A span among their ancestors. A span's parent is the first span recorded
///   with its `parent_span_id` in the trace.
/// - `| count() > 3`, `| avg(duration) > 1s` (`max`, `min`, `sum`) hold over the spans a trace
///   matched so far; a trace that fails one matches nothing. An aggregate of durations over
///   spans without any is false.
/// - A field a span lacks (`span_id`, `parent_span_id`, `task_uuid`, `duration`, a `details`
///   path) satisfies `= null` only. A present value: `=` and `!=` compare values of one type
///   (`!=` is true across types); `<`, `<=`, `>`, `>=` compare numbers (durations in ms) or
///   texts, and are false across types; `=~` and `!~` match a whole text against the expression
///   and are false for what is not text. `status` is `error` for docs/api.md's error spans.
struct TraceQueryEvaluator {
    let query: TraceQuery
    /// The compiled expressions, by pattern.
    private let patterns: [String: Regex<AnyRegexOutput>]
    /// Whether a condition looks inside `details` (read once per span, then).
    let readsDetails: Bool

    init(_ query: TraceQuery) throws(TraceQueryError) {
        self.query = query
        var patterns: [String: Regex<AnyRegexOutput>] = [:]
        var readsDetails = false
        func collect(_ condition: SpanCondition) throws(TraceQueryError) {
            if case .comparison(.detail, _, _) = condition { readsDetails = true }
            switch condition {
            case .comparison(_, let comparison, .string(let pattern)) where comparison == .matches || comparison == .doesNotMatch:
                do {
                    patterns[pattern] = try Regex(pattern)
                } catch {
                    throw TraceQueryError(column: 1, message: "expected a valid regular expression: \(error)")
                }
            case .comparison: break
            case .not(let inner): try collect(inner)
            case .and(let left, let right), .or(let left, let right):
                try collect(left)
                try collect(right)
            }
        }
        func collect(_ expression: SpansetExpression) throws(TraceQueryError) {
            switch expression {
            case .spanset(let condition): if let condition { try collect(condition) }
            case .and(let left, let right), .or(let left, let right), .child(let left, let right), .descendant(let left, let right):
                try collect(left)
                try collect(right)
            }
        }
        try collect(query.spansets)
        self.patterns = patterns
        self.readsDetails = readsDetails
    }

    /// A trace's spans made ready for this query.
    func trace(_ spans: [SpanRecord]) -> Trace { Trace(spans, readingDetails: readsDetails) }

    /// A trace's spans as the evaluator reads them: with their error flag and parents.
    struct Trace {
        let spans: [SpanRecord]
        let isError: [Bool]
        /// The index of each span's parent (nil: none recorded).
        let parent: [Int?]
        /// Each span's `details`, read (when a condition looks inside them).
        let details: [JSONValue?]

        init(_ spans: [SpanRecord], readingDetails: Bool) {
            self.spans = spans
            isError = spans.map(\.span.isError)
            details = readingDetails ? spans.map { $0.span.details?.jsonValue } : []
            var first: [String: Int] = [:]
            for index in spans.indices {
                guard let id = spans[index].span.spanId else { continue }
                if let known = first[id], spans[known].seq < spans[index].seq { continue }
                first[id] = index
            }
            parent = spans.map { record in record.span.parentSpanId.flatMap { first[$0] } }
        }
    }

    /// The indices of the spans the query matches in a trace, ascending; empty when the trace
    /// does not match.
    func matchingSpans(_ trace: Trace) -> [Int] {
        var matched = spans(query.spansets, trace)
        for filter in query.filters where !matched.isEmpty {
            if !holds(filter, over: matched, trace) { matched = [] }
        }
        return matched.sorted()
    }

    private func spans(_ expression: SpansetExpression, _ trace: Trace) -> Set<Int> {
        switch expression {
        case .spanset(let condition):
            guard let condition else { return Set(trace.spans.indices) }
            return Set(trace.spans.indices.filter { matches(condition, trace, $0) })
        case .and(let left, let right):
            let (a, b) = (spans(left, trace), spans(right, trace))
            return a.isEmpty || b.isEmpty ? [] : a.union(b)
        case .or(let left, let right):
            return spans(left, trace).union(spans(right, trace))
        case .child(let left, let right):
            let parents = spans(left, trace)
            guard !parents.isEmpty else { return [] }
            return spans(right, trace).filter { child in trace.parent[child].map(parents.contains) ?? false }
        case .descendant(let left, let right):
            let ancestors = spans(left, trace)
            guard !ancestors.isEmpty else { return [] }
            return spans(right, trace).filter { below in
                var seen: Set<Int> = [below]
                var current = trace.parent[below]
                while let index = current, seen.insert(index).inserted {
                    if ancestors.contains(index) { return true }
                    current = trace.parent[index]
                }
                return false
            }
        }
    }

    private func holds(_ filter: AggregateFilter, over matched: Set<Int>, _ trace: Trace) -> Bool {
        let value: Double
        if filter.aggregate == .count {
            value = Double(matched.count)
        } else {
            let durations = matched.compactMap { trace.spans[$0].span.durationMs }
            guard !durations.isEmpty else { return false }
            switch filter.aggregate {
            case .count, .sum: value = durations.reduce(0, +)
            case .avg: value = durations.reduce(0, +) / Double(durations.count)
            case .max: value = durations.max() ?? 0
            case .min: value = durations.min() ?? 0
            }
        }
        return Self.compare(value, filter.comparison, filter.value)
    }

    func matches(_ condition: SpanCondition, _ trace: Trace, _ index: Int) -> Bool {
        switch condition {
        case .not(let inner): return !matches(inner, trace, index)
        case .and(let left, let right): return matches(left, trace, index) && matches(right, trace, index)
        case .or(let left, let right): return matches(left, trace, index) || matches(right, trace, index)
        case .comparison(let field, let comparison, let value):
            let span = trace.spans[index].span
            let actual: JSONValue?
            switch field {
            case .source: actual = .string(span.source)
            case .stage: actual = .string(span.stage)
            case .operation: actual = .string(span.operation)
            case .traceId: actual = .string(span.traceId)
            case .spanId: actual = span.spanId.map(JSONValue.string)
            case .parentSpanId: actual = span.parentSpanId.map(JSONValue.string)
            case .taskUUID: actual = span.taskUUID.map(JSONValue.string)
            case .duration: actual = span.durationMs.map(JSONValue.number)
            case .status:
                guard case .status(let isError) = value else { return false }
                return (trace.isError[index] == isError) == (comparison == .equal)
            case .detail(let path): actual = Self.value(at: path, in: trace.details[index])
            }
            return compare(actual, comparison, value)
        }
    }

    /// The value at `path` in a span's details; nil when it has none there (JSON null is `.null`).
    static func value(at path: [String], in details: JSONValue?) -> JSONValue? {
        guard var current = details else { return nil }
        for key in path {
            guard case .object(let object) = current, let next = object[key] else { return nil }
            current = next
        }
        return current
    }

    private func compare(_ actual: JSONValue?, _ comparison: ComparisonOperator, _ expected: QueryValue) -> Bool {
        guard let actual, actual != .null else {
            // Missing, or JSON null: only `= null` holds.
            if case .null = expected { return comparison == .equal }
            return false
        }
        if case .null = expected { return comparison == .notEqual }
        switch comparison {
        case .matches, .doesNotMatch:
            guard case .string(let text) = actual, case .string(let pattern) = expected, let regex = patterns[pattern] else { return false }
            return (text.wholeMatch(of: regex) != nil) == (comparison == .matches)
        case .equal, .notEqual:
            let equal = Self.ordered(actual, expected).map { $0 == .orderedSame } ?? false
            return equal == (comparison == .equal)
        case .less, .lessOrEqual, .greater, .greaterOrEqual:
            guard let order = Self.ordered(actual, expected) else { return false }
            switch comparison {
            case .less: return order == .orderedAscending
            case .lessOrEqual: return order != .orderedDescending
            case .greater: return order == .orderedDescending
            default: return order != .orderedAscending
            }
        }
    }

    private enum Order { case orderedAscending, orderedSame, orderedDescending }

    /// How a present value compares with a literal of the same type; nil across types.
    private static func ordered(_ actual: JSONValue, _ expected: QueryValue) -> Order? {
        func order<T: Comparable>(_ a: T, _ b: T) -> Order { a < b ? .orderedAscending : a > b ? .orderedDescending : .orderedSame }
        let number: Double? =
            switch actual {
            case .integer(let value): Double(value)
            case .number(let value): value
            default: nil
            }
        switch expected {
        case .string(let text):
            guard case .string(let value) = actual else { return nil }
            return order(value, text)
        case .number(let literal), .duration(let literal):
            return number.map { order($0, literal) }
        case .bool(let literal):
            guard case .bool(let value) = actual else { return nil }
            return value == literal ? .orderedSame : nil
        case .null, .status:
            return nil
        }
    }

    static func compare(_ value: Double, _ comparison: ComparisonOperator, _ literal: Double) -> Bool {
        switch comparison {
        case .equal: value == literal
        case .notEqual: value != literal
        case .less: value < literal
        case .lessOrEqual: value <= literal
        case .greater: value > literal
        case .greaterOrEqual: value >= literal
        case .matches, .doesNotMatch: false
        }
    }
}
