/// How a query finds its candidate traces through the projections' indexes (docs/analysis.md,
/// "The query language"): the equalities every matching trace must have in some span — on
/// `source`, `operation` and `stage` (found through `value_batches` and the traces' spans), on
/// `trace_id` (one trace), and `status = error` (traces with an error) — become the filters of
/// a trace search, newest first; each candidate's spans are then read and the query evaluated
/// on them exactly. A condition under `||` or `!` narrows nothing.
struct TraceQueryPlan: Sendable, Hashable {
    var source: String?
    var operation: String?
    var stage: String?
    var traceId: String?
    var errorsOnly = false

    init(_ query: TraceQuery) {
        var required: [(SpanField, String)] = []
        Self.collect(query.spansets, into: &required, errors: &errorsOnly)
        for (field, value) in required {
            switch field {
            case .source where source == nil: source = value
            case .operation where operation == nil: operation = value
            case .stage where stage == nil: stage = value
            case .traceId where traceId == nil: traceId = value
            default: break
            }
        }
    }

    private static func collect(_ expression: SpansetExpression, into required: inout [(SpanField, String)], errors: inout Bool) {
        switch expression {
        case .spanset(let condition):
            if let condition { collect(condition, into: &required, errors: &errors) }
        case .and(let left, let right), .child(let left, let right), .descendant(let left, let right):
            collect(left, into: &required, errors: &errors)
            collect(right, into: &required, errors: &errors)
        case .or:
            break
        }
    }

    private static func collect(_ condition: SpanCondition, into required: inout [(SpanField, String)], errors: inout Bool) {
        switch condition {
        case .comparison(let field, .equal, .string(let value)) where [.source, .operation, .stage, .traceId].contains(field):
            required.append((field, value))
        case .comparison(.status, .equal, .status(isError: true)):
            errors = true
        case .and(let left, let right):
            collect(left, into: &required, errors: &errors)
            collect(right, into: &required, errors: &errors)
        case .comparison, .or, .not:
            break
        }
    }
}
