/// A query of the query language (docs/analysis.md, "The query language"): span conditions in
/// braces, combined into trace conditions, then a pipeline of conditions on each trace's
/// matching spans and, for a metrics query, one metric function at the end.
///
/// `{ source = "data-factory" && duration > 100ms } >> { status = error } | count() > 2`
public struct TraceQuery: Sendable, Hashable {
    public var spansets: SpansetExpression
    /// Conditions on each trace's matching spans, in order.
    public var filters: [AggregateFilter]
    /// Set for a metrics query: what to turn the matching spans into, as time series.
    public var metric: MetricFunction?

    public init(spansets: SpansetExpression, filters: [AggregateFilter] = [], metric: MetricFunction? = nil) {
        self.spansets = spansets
        self.filters = filters
        self.metric = metric
    }

    /// Parses `text`; a query that does not parse throws ``TraceQueryError`` naming the column of
    /// the first error and what was expected there.
    public init(parsing text: String) throws(TraceQueryError) {
        var parser = TraceQueryParser(text)
        self = try parser.parseQuery()
    }
}

/// Trace conditions: spansets combined.
public indirect enum SpansetExpression: Sendable, Hashable {
    /// Traces with a span matching the condition (nil: any span).
    case spanset(SpanCondition?)
    /// Both / either, in one trace.
    case and(SpansetExpression, SpansetExpression)
    case or(SpansetExpression, SpansetExpression)
    /// Spans of the right side whose parent (`child`) or an ancestor (`descendant`) is a span of
    /// the left side.
    case child(SpansetExpression, SpansetExpression)
    case descendant(SpansetExpression, SpansetExpression)
}

/// A condition on one span.
public indirect enum SpanCondition: Sendable, Hashable {
    case comparison(SpanField, ComparisonOperator, QueryValue)
    case not(SpanCondition)
    case and(SpanCondition, SpanCondition)
    case or(SpanCondition, SpanCondition)
}

/// What a span condition looks at.
public enum SpanField: Sendable, Hashable {
    case source, stage, operation, traceId, spanId, parentSpanId, taskUUID
    /// `duration_ms`, compared with a duration.
    case duration
    /// `error` or `ok` (docs/api.md's error spans).
    case status
    /// A value inside `details`, by its path (`.http.status` → ["http", "status"]).
    case detail([String])

    static let named: [String: SpanField] = [
        "source": .source, "stage": .stage, "operation": .operation, "trace_id": .traceId, "span_id": .spanId,
        "parent_span_id": .parentSpanId, "task_uuid": .taskUUID, "duration": .duration, "status": .status,
    ]
}

public enum ComparisonOperator: String, Sendable, Hashable, CaseIterable {
    case equal = "="
    case notEqual = "!="
    case less = "<"
    case lessOrEqual = "<="
    case greater = ">"
    case greaterOrEqual = ">="
    case matches = "=~"
    case doesNotMatch = "!~"
}

/// A literal.
public enum QueryValue: Sendable, Hashable {
    case string(String)
    case number(Double)
    /// A duration, in milliseconds.
    case duration(Double)
    case bool(Bool)
    case null
    /// `error` or `ok`, for `status`.
    case status(isError: Bool)
}

/// A condition on a trace's matching spans: `count() > 3`, `avg(duration) > 1s`.
public struct AggregateFilter: Sendable, Hashable {
    public enum Aggregate: String, Sendable, Hashable {
        case count, avg, max, min, sum
    }

    public var aggregate: Aggregate
    public var comparison: ComparisonOperator
    /// A count, or a duration in milliseconds.
    public var value: Double
}

/// The metric function that ends a metrics query.
public struct MetricFunction: Sendable, Hashable {
    public enum Kind: Sendable, Hashable {
        case rate
        case countOverTime
        case quantileOverTime([Double])
        case avgOverTime
    }

    /// What the series are grouped by.
    public enum Label: Sendable, Hashable {
        case source, operation, stage
        case detail([String])
    }

    public var kind: Kind
    public var groupedBy: [Label]
}

/// Why a query does not parse: where (a 1-based column, in characters) and what was expected.
public struct TraceQueryError: Error, Sendable, Hashable, CustomStringConvertible {
    public var column: Int
    public var message: String

    public var description: String { "column \(column): \(message)" }
}
