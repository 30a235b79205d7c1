/// The query language served (docs/analysis.md, "The query language"): traces by query
/// (`GET /api/traces?q={…}`) and metrics by query (`GET /api/metrics/query`).
extension TraceQueries {
    /// Candidate traces one trace search examines at most: a page with fewer matches than asked
    /// for, and a `next_cursor`, says the budget ran out before the end.
    public static let queryScanBudget = 5_000
    /// Traces a metrics query reads at most in its window; more is refused.
    public static let metricsTraceBudget = 20_000
    /// Points a metrics series may have.
    public static let metricsMaximumPoints = 1_000

    /// Traces matching a query, newest first (by start, then trace id), `search.limit` at a time;
    /// `search`'s own filters (source, operation, stage, error, since, until) narrow the
    /// candidates further. The candidates come from the projections' indexes (``TraceQueryPlan``);
    /// a query they cannot narrow needs a time window (`since`), else `invalid_argument` says
    /// what to add. At most ``queryScanBudget`` candidates are read per call.
    public func queryTraces(_ text: String, search: TraceSearch) async throws(CoreError) -> (traces: [TraceSummaryRecord], nextCursor: String?) {
        let query = try Self.parse(text)
        guard query.metric == nil else {
            throw CoreError.invalidArgument("q", "is a metrics query (it ends in a metric function): ask GET /api/metrics/query")
        }
        let evaluator = try Self.evaluator(query)
        let plan = TraceQueryPlan(query)
        guard (1...1000).contains(search.limit) else { throw CoreError.invalidArgument("limit", "must be 1–1000") }
        if let traceId = plan.traceId {
            guard search.cursor == nil else { return ([], nil) }
            try await context.awaitProjections()
            guard let (spans, summary) = try await spans(ofTrace: traceId) else { return ([], nil) }
            return (evaluator.matchingSpans(evaluator.trace(spans)).isEmpty ? [] : [summary], nil)
        }
        var candidates = search
        candidates.source = candidates.source ?? plan.source
        candidates.operation = candidates.operation ?? plan.operation
        candidates.stage = candidates.stage ?? plan.stage
        candidates.errorsOnly = candidates.errorsOnly || plan.errorsOnly
        candidates.query = nil
        guard candidates.source != nil || candidates.operation != nil || candidates.stage != nil || candidates.errorsOnly || candidates.since != nil
        else {
            throw CoreError.invalidArgument(
                "q",
                "would read every trace: add source = \"…\", operation = \"…\", stage = \"…\", trace_id = \"…\" or status = error to a span condition every match has (not under || or !), or a time window (since=)"
            )
        }
        var found: [TraceSummaryRecord] = []
        var scanned = 0
        var cursor = search.cursor
        // Candidate pages start at what is asked for and double while few match: a query most
        // traces match reads few summaries, a rare one soon reads many per page.
        var pageSize = search.limit
        while found.count < search.limit && scanned < Self.queryScanBudget {
            candidates.cursor = cursor
            candidates.limit = min(pageSize, 1000, Self.queryScanBudget - scanned)
            pageSize *= 2
            let page = try await searchTraces(candidates)
            let spansOfPage = try await spans(ofTraces: page.traces.map(\.traceId))
            for summary in page.traces {
                scanned += 1
                cursor = "\(summary.start)~\(summary.traceId)"
                if let spans = spansOfPage[summary.traceId], !evaluator.matchingSpans(evaluator.trace(spans)).isEmpty {
                    found.append(summary)
                    if found.count == search.limit { break }
                }
            }
            if page.nextCursor == nil && found.count < search.limit { return (found, nil) }
        }
        return (found, cursor)
    }

    /// A metrics query over a window as time series (docs/analysis.md): the spans its trace
    /// conditions match, in traces that start from 15 minutes before `since` through `until`,
    /// whose timestamps fall in the window, counted per `step`. `until` defaults to now, `since`
    /// to an hour before, `step` to a sixtieth of the window (at least 1 s).
    public func queryMetrics(_ text: String, since: Int64?, until: Int64?, step: Int64?) async throws(CoreError) -> MetricSeriesSet {
        let query = try Self.parse(text)
        guard let metric = query.metric else {
            throw CoreError.invalidArgument(
                "q",
                "is not a metrics query: end it in | rate(), | count_over_time(), | avg_over_time(duration) or | quantile_over_time(duration, 0.99)"
            )
        }
        let evaluator = try Self.evaluator(query)
        let plan = TraceQueryPlan(query)
        let until = until ?? context.now()
        let since = since ?? until - 3_600_000_000_000
        guard since < until else { throw CoreError.invalidArgument("since", "must be before until") }
        let window = until - since
        let step = step ?? max(1_000_000_000, (window / 60 + 999_999_999) / 1_000_000_000 * 1_000_000_000)
        guard step >= 1_000_000 else { throw CoreError.invalidArgument("step", "must be at least 1ms") }
        let points = (window + step - 1) / step
        guard points <= Self.metricsMaximumPoints else {
            throw CoreError.invalidArgument("step", "gives \(points) points; at most \(Self.metricsMaximumPoints): a larger step or a shorter window")
        }
        var series = MetricSeriesSet(metric: metric, since: since, step: step, points: Int(points))
        var candidates = TraceSearch()
        candidates.source = plan.source
        candidates.operation = plan.operation
        candidates.stage = plan.stage
        candidates.errorsOnly = plan.errorsOnly
        candidates.since = since - 900_000_000_000
        candidates.until = until
        candidates.limit = 1000
        var read = 0
        while true {
            let page = try await searchTraces(candidates)
            guard read + page.traces.count <= Self.metricsTraceBudget else {
                throw CoreError.invalidArgument(
                    "q",
                    "matches more than \(Self.metricsTraceBudget) traces in the window: add source = \"…\", operation = \"…\" or stage = \"…\" to a span condition, or shorten the window"
                )
            }
            read += page.traces.count
            let spansOfPage = try await spans(ofTraces: page.traces.map(\.traceId))
            for summary in page.traces {
                guard let spans = spansOfPage[summary.traceId] else { continue }
                for index in evaluator.matchingSpans(evaluator.trace(spans)) where (since..<until).contains(spans[index].span.timestamp) {
                    series.add(spans[index].span)
                }
            }
            guard let next = page.nextCursor else { break }
            candidates.cursor = next
        }
        return series
    }

    static func parse(_ text: String) throws(CoreError) -> TraceQuery {
        do {
            return try TraceQuery(parsing: text)
        } catch {
            throw CoreError.invalidArgument("q", "does not parse: \(error)")
        }
    }

    static func evaluator(_ query: TraceQuery) throws(CoreError) -> TraceQueryEvaluator {
        do {
            return try TraceQueryEvaluator(query)
        } catch {
            throw CoreError.invalidArgument("q", "does not parse: \(error)")
        }
    }

    /// The spans of several traces (from the log, with their details, each trace's in seq
    /// order): their locations in one projections read, their events in one scattered log read
    /// (each batch decompressed once however many of the traces it holds). A trace with no spans
    /// left is missing.
    func spans(ofTraces traceIds: [String]) async throws(CoreError) -> [String: [SpanRecord]] {
        guard !traceIds.isEmpty else { return [:] }
        let locations: [String: TraceLocation]
        do {
            locations = try await context.store.traces(traceIds)
        } catch {
            throw CoreError.internal("reading \(traceIds.count) traces failed", error)
        }
        let events = try await events(at: locations.values.flatMap(\.seqs).sorted())
        var found: [String: [SpanRecord]] = [:]
        for (traceId, location) in locations {
            let spans = Self.spans(at: location.seqs, in: events)
            if !spans.isEmpty { found[traceId] = spans }
        }
        return found
    }

    /// A trace's spans (from the log, with their details) and summary; nil when it has none left.
    func spans(ofTrace traceId: String) async throws(CoreError) -> ([SpanRecord], TraceSummaryRecord)? {
        let location: TraceLocation?
        do {
            location = try await context.store.trace(traceId)
        } catch {
            throw CoreError.internal("reading trace \(traceId) failed", error)
        }
        guard let found = location, !found.seqs.isEmpty else { return nil }
        let spans = try await spans(at: found)
        return spans.isEmpty ? nil : (spans, found.summary)
    }
}
