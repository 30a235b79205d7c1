import CustodyCore
import CustodyLog
import CustodyLogTesting
import Foundation
import Testing

/// The query language served (docs/analysis.md, "The query language"): a table of queries run
/// through `TraceQueries.queryTraces` — the planner's candidates from the indexes, in pages with
/// cursors — against a naive evaluator written here that reads every span of a generated
/// log; metrics queries against counts made here; refusals.
@Suite struct QueryLanguageTests {
    static let sources = ["agent-factory", "data-factory", "ui-factory", "orchestrator", "ops-factory"]
    static let operations = ["plan", "load", "render", "route", "deploy", "runPipeline"]
    static let stages = ["processing", "request_received", "response_sent", "error"]
    static let t0: Int64 = 1_796_000_000_000_000_000

    /// 240 traces of 1–12 spans: trees by parent links (some spans without a span id, some
    /// parents never recorded), durations (some missing), details with nested values.
    static func generate(seed: UInt64) -> [[Span]] {
        var random = SplitMix64(seed: seed)
        func pick<T>(_ values: [T]) -> T { values[Int(random.next(upperBound: UInt64(values.count)))] }
        var traces: [[Span]] = []
        for t in 0..<240 {
            let count = 1 + Int(random.next(upperBound: 12))
            var spans: [Span] = []
            let start = t0 + Int64(t) * 5_000_000_000
            for s in 0..<count {
                let parent: String? = s == 0 ? (random.next(upperBound: 5) == 0 ? "upstream" : nil) : "s\(Int(random.next(upperBound: UInt64(s))))"
                var details: [String: JSONValue] = [
                    "http": .object(["status": .integer([200, 200, 201, 404, 500][Int(random.next(upperBound: 5))])])
                ]
                if random.next(upperBound: 3) == 0 {
                    details["attributes"] = .object([
                        "user_id": .string("u\(random.next(upperBound: 6))"), "retry": .bool(random.next(upperBound: 2) == 0),
                    ])
                }
                if random.next(upperBound: 9) == 0 { details["error"] = .string("boom") }
                if random.next(upperBound: 7) == 0 { details["note"] = .null }
                spans.append(
                    Span(
                        traceId: "q\(t)",
                        spanId: random.next(upperBound: 15) == 0 ? nil : "s\(s)",
                        parentSpanId: parent,
                        source: pick(sources),
                        stage: pick(stages),
                        operation: pick(operations),
                        taskUUID: random.next(upperBound: 4) == 0 ? "task-\(t % 9)" : nil,
                        durationMs: random.next(upperBound: 8) == 0 ? nil : Double(random.next(upperBound: 3_000_000)) / 1000,
                        timestamp: start + Int64(s) * 1_000_000 + Int64(random.next(upperBound: 1_000_000)),
                        details: JSONValue.object(details).jsonText
                    )
                )
            }
            traces.append(spans)
        }
        return traces
    }

    // MARK: The naive evaluator: every span, the rules read literally.

    struct Naive {
        let spans: [(seq: Int, span: Span)]

        /// The span of this trace that is `span`'s parent: the lowest seq with its parent's id.
        func parent(of index: Int) -> Int? {
            guard let id = spans[index].span.parentSpanId else { return nil }
            return spans.indices.filter { spans[$0].span.spanId == id }.min { spans[$0].seq < spans[$1].seq }
        }

        func value(_ field: SpanField, _ span: Span) -> JSONValue? {
            switch field {
            case .source: .string(span.source)
            case .stage: .string(span.stage)
            case .operation: .string(span.operation)
            case .traceId: .string(span.traceId)
            case .spanId: span.spanId.map { .string($0) }
            case .parentSpanId: span.parentSpanId.map { .string($0) }
            case .taskUUID: span.taskUUID.map { .string($0) }
            case .duration: span.durationMs.map { .number($0) }
            case .status: .bool(span.isError)
            case .detail(let path):
                path.reduce(span.details?.jsonValue) { value, key in
                    if case .object(let object)? = value { object[key] } else { nil }
                }
            }
        }

        func holds(_ condition: SpanCondition, _ index: Int) -> Bool {
            switch condition {
            case .not(let inner): return !holds(inner, index)
            case .and(let a, let b): return holds(a, index) && holds(b, index)
            case .or(let a, let b): return holds(a, index) || holds(b, index)
            case .comparison(.status, let op, .status(let isError)):
                return op == .equal ? spans[index].span.isError == isError : spans[index].span.isError != isError
            case .comparison(let field, let op, let literal):
                let actual = value(field, spans[index].span)
                if actual == nil || actual == .null {
                    if case .null = literal { return op == .equal }
                    return false
                }
                if case .null = literal { return op == .notEqual }
                var number: Double?
                if case .integer(let n)? = actual { number = Double(n) }
                if case .number(let n)? = actual { number = n }
                switch (actual!, literal) {
                case (.string(let a), .string(let b)):
                    switch op {
                    case .equal: return a == b
                    case .notEqual: return a != b
                    case .less: return a < b
                    case .lessOrEqual: return a <= b
                    case .greater: return a > b
                    case .greaterOrEqual: return a >= b
                    case .matches: return (try? Regex(b)).map { a.wholeMatch(of: $0) != nil } ?? false
                    case .doesNotMatch: return (try? Regex(b)).map { a.wholeMatch(of: $0) == nil } ?? false
                    }
                case (_, .number(let b)) where number != nil, (_, .duration(let b)) where number != nil:
                    let a = number!
                    switch op {
                    case .equal: return a == b
                    case .notEqual: return a != b
                    case .less: return a < b
                    case .lessOrEqual: return a <= b
                    case .greater: return a > b
                    case .greaterOrEqual: return a >= b
                    case .matches, .doesNotMatch: return false
                    }
                case (.bool(let a), .bool(let b)):
                    return op == .equal ? a == b : op == .notEqual ? a != b : false
                default:
                    return op == .notEqual
                }
            }
        }

        func matching(_ expression: SpansetExpression) -> Set<Int> {
            switch expression {
            case .spanset(let condition): return Set(spans.indices.filter { index in condition.map { holds($0, index) } ?? true })
            case .and(let a, let b):
                let (left, right) = (matching(a), matching(b))
                return left.isEmpty || right.isEmpty ? [] : left.union(right)
            case .or(let a, let b): return matching(a).union(matching(b))
            case .child(let a, let b):
                let parents = matching(a)
                return matching(b).filter { parent(of: $0).map { parents.contains($0) } ?? false }
            case .descendant(let a, let b):
                let above = matching(a)
                return matching(b).filter { index in
                    var visited: Set<Int> = [index]
                    var current = parent(of: index)
                    while let next = current, !visited.contains(next) {
                        if above.contains(next) { return true }
                        visited.insert(next)
                        current = parent(of: next)
                    }
                    return false
                }
            }
        }

        func matches(_ query: TraceQuery) -> Set<Int> {
            var result = matching(query.spansets)
            for filter in query.filters where !result.isEmpty {
                let durations = result.compactMap { spans[$0].span.durationMs }
                let value: Double? =
                    switch filter.aggregate {
                    case .count: Double(result.count)
                    case .sum: durations.isEmpty ? nil : durations.reduce(0, +)
                    case .avg: durations.isEmpty ? nil : durations.reduce(0, +) / Double(durations.count)
                    case .max: durations.max()
                    case .min: durations.min()
                    }
                let holds: Bool
                if let value {
                    switch filter.comparison {
                    case .equal: holds = value == filter.value
                    case .notEqual: holds = value != filter.value
                    case .less: holds = value < filter.value
                    case .lessOrEqual: holds = value <= filter.value
                    case .greater: holds = value > filter.value
                    case .greaterOrEqual: holds = value >= filter.value
                    case .matches, .doesNotMatch: holds = false
                    }
                } else {
                    holds = false
                }
                if !holds { result = [] }
            }
            return result
        }
    }

    /// The table: (query, whether its span conditions narrow the search through the indexes).
    static func table() -> [(String, Bool)] {
        var queries: [(String, Bool)] = []
        for source in sources { queries.append(("{ source = \"\(source)\" }", true)) }
        for operation in operations { queries.append(("{ operation = \"\(operation)\" }", true)) }
        for stage in stages { queries.append(("{ stage = \"\(stage)\" }", true)) }
        for (source, limit) in zip(sources, ["100ms", "1s", "2.5s", "500us", "1.2s"]) {
            queries.append(("{ source = \"\(source)\" && duration > \(limit) }", true))
            queries.append(("{ source = \"\(source)\" && duration <= \(limit) }", true))
        }
        for source in sources {
            queries.append(("{ source = \"\(source)\" && status = error }", true))
            queries.append(("{ source = \"\(source)\" && status != error }", true))
            queries.append(("{ source = \"\(source)\" && .http.status >= 400 }", true))
        }
        queries += [
            ("{ status = error }", true), ("{ status = ok }", false), ("{ .http.status = 500 }", false), ("{ .http.status != 200 }", false),
            ("{ .attributes.user_id = \"u3\" }", false), ("{ .attributes.retry = true }", false), ("{ .attributes.retry != true }", false),
            ("{ .attributes = null }", false), ("{ .note = null && operation = \"plan\" }", true), ("{ .missing.path != null }", false),
            ("{ .error =~ \"bo.*\" }", false), ("{ .attributes.user_id !~ \"u[0-2]\" }", false), ("{ task_uuid = null && stage = \"error\" }", true),
            ("{ task_uuid = \"task-3\" }", false), ("{ span_id = null }", false), ("{ parent_span_id = \"upstream\" }", false),
            ("{ .http.status = null && source = \"ui-factory\" }", true), ("{ operation =~ \"r.*\" }", false), ("{ source !~ \".*factory\" }", false),
            ("{ operation =~ \"run.*\" && source = \"agent-factory\" }", true), ("{ duration > 2s || status = error }", false),
            ("{ !(source = \"agent-factory\") && operation = \"load\" }", true),
            ("{ (source = \"data-factory\" || source = \"ui-factory\") && duration > 1s }", false),
            ("{ source = \"orchestrator\" && !(status = error) && duration < 10ms }", true), ("{}", false),
            ("{ .http.status > 199 && .http.status < 300 && stage = \"response_sent\" }", true),
            ("{ .http.status = \"500\" }", false), ("{ .attributes.user_id > \"u3\" && source = \"ops-factory\" }", true),
        ]
        for (a, b) in zip(sources, sources.dropFirst() + [sources[0]]) {
            queries.append(("{ source = \"\(a)\" } > { source = \"\(b)\" }", true))
            queries.append(("{ source = \"\(a)\" } >> { source = \"\(b)\" }", true))
            queries.append(("{ source = \"\(a)\" } && { source = \"\(b)\" }", true))
            queries.append(("{ source = \"\(a)\" } || { source = \"\(b)\" }", false))
        }
        for operation in operations.prefix(4) {
            queries.append(("{ operation = \"\(operation)\" } > { status = error }", true))
            queries.append(("{ status = error } >> { operation = \"\(operation)\" && duration > 500ms }", true))
        }
        queries += [
            ("{ source = \"agent-factory\" } | count() > 2", true), ("{ source = \"data-factory\" } | count() = 1", true),
            ("{ operation = \"plan\" } | avg(duration) > 1s", true), ("{ operation = \"load\" } | max(duration) >= 2.5s", true),
            ("{ operation = \"render\" } | min(duration) < 100ms", true), ("{ stage = \"error\" } | sum(duration) > 3s", true),
            ("{ source = \"ui-factory\" } | count() >= 2 | avg(duration) < 1.5s", true), ("{} | count() > 10", false),
            ("{ source = \"orchestrator\" } >> { } | count() > 3", true),
            ("{ source = \"agent-factory\" } > { source = \"data-factory\" } | count() > 1", true),
            ("({ source = \"agent-factory\" } || { source = \"ops-factory\" }) && { stage = \"error\" }", true),
            ("{ trace_id = \"q17\" }", true), ("{ trace_id = \"q239\" && source = \"agent-factory\" }", true), ("{ trace_id = \"nope\" }", true),
            ("{ source = \"agent-factory\" } > { source = \"agent-factory\" } > { source = \"agent-factory\" }", true),
        ]
        return queries
    }

    @Test func aTableOfQueriesAnswersAsANaiveEvaluatorOverEverySpan() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("custody-query-\(UUID().uuidString)").path
        defer { removeDataDirectory(directory) }
        let traces = Self.generate(seed: 2026)
        let log = try await SegmentLog.open(directory: directory)
        var random = SplitMix64(seed: 7)
        // Spans appended in random batches and order, eight traces at a time interleaved:
        // children before parents, a trace across batches.
        var pending: [Span] = []
        for group in stride(from: 0, to: traces.count, by: 8) {
            pending += traces[group..<min(group + 8, traces.count)].flatMap { $0 }.shuffled(using: &random)
        }
        var bySeq: [String: [(seq: Int, span: Span)]] = [:]
        while !pending.isEmpty {
            let batch = Array(pending.prefix(1 + Int(random.next(upperBound: 60))))
            pending.removeFirst(batch.count)
            let receipt = try await log.append(batch.map { EventCodec.encode(.span($0)) })
            for (offset, span) in batch.enumerated() { bySeq[span.traceId, default: []].append((Int(receipt.firstSeq) + offset, span)) }
        }
        let store = try SQLiteProjectionStore(path: ProjectionPaths.database(in: directory))
        try await Projector(log: log, store: store, batchSize: 97).catchUp()
        try store.closeDatabase()
        await log.close()
        let runtime = try await CoreRuntime.open(directory: directory)

        let table = Self.table()
        #expect(table.count >= 100)
        var matchedSomething = 0
        for (number, (text, narrowed)) in table.enumerated() {
            let query = try TraceQuery(parsing: text)
            let expected = Set(bySeq.filter { !Naive(spans: $0.value).matches(query).isEmpty }.keys)
            if !expected.isEmpty && expected.count < traces.count { matchedSomething += 1 }
            var search = TraceSearch()
            // Pages of 7 for every fifth query (many cursors), else of 60.
            search.limit = number % 5 == 0 ? 7 : 60
            // A query the indexes cannot narrow is refused without a window; with one it runs.
            if !narrowed {
                do {
                    _ = try await runtime.traces.queryTraces(text, search: search)
                    Issue.record("\(text): an unbounded query was answered")
                } catch {
                    #expect(error.code == .invalidArgument && error.message.contains("time window"), "\(text): \(error)")
                }
                search.since = Self.t0 - 1
            }
            var found: [TraceSummaryRecord] = []
            var pages = 0
            repeat {
                let page = try await runtime.traces.queryTraces(text, search: search)
                found += page.traces
                search.cursor = page.nextCursor
                pages += 1
            } while search.cursor != nil && pages < 200
            #expect(Set(found.map(\.traceId)) == expected, "\(text): \(found.count) found, \(expected.count) expected")
            #expect(found.count == Set(found.map(\.traceId)).count, "\(text): a trace twice")
            let order = found.map { "\($0.start)~\($0.traceId)" }
            #expect(
                zip(found, found.dropFirst()).allSatisfy { ($0.start, $0.traceId) > ($1.start, $1.traceId) },
                "\(text): not newest first: \(order)"
            )
        }
        #expect(matchedSomething >= 80, "only \(matchedSomething) queries match some but not all traces")

        // Metrics: counts per source of error spans per minute, and quantiles, against counts here.
        let spans = traces.flatMap { $0 }
        let since = Self.t0
        let until = Self.t0 + 240 * 5_000_000_000
        let counted = try await runtime.traces.queryMetrics(
            "{ status = error } | count_over_time() by (source)",
            since: since,
            until: until,
            step: 60_000_000_000
        )
        for series in counted.series {
            let source = try #require(series.labels["source"])
            for point in series.points {
                let want = spans.filter {
                    $0.isError && $0.source == source && ($0.timestamp - since) / 60_000_000_000 == (point.at - since) / 60_000_000_000
                }
                #expect(point.value == Double(want.count), "\(source) at \(point.at)")
            }
        }
        #expect(Set(counted.series.compactMap { $0.labels["source"] }) == Set(spans.filter(\.isError).map(\.source)))
        let quantiles = try await runtime.traces.queryMetrics(
            "{ source = \"data-factory\" } | quantile_over_time(duration, 0.5, 0.99)",
            since: since,
            until: until,
            step: 600_000_000_000
        )
        #expect(quantiles.series.map { $0.labels["quantile"] } == ["0.5", "0.99"])
        for series in quantiles.series {
            let q = Double(series.labels["quantile"] ?? "") ?? 0
            for point in series.points {
                let durations = spans.filter {
                    $0.source == "data-factory" && ($0.timestamp - point.at) >= 0 && $0.timestamp - point.at < 600_000_000_000
                }
                .compactMap(\.durationMs).sorted()
                #expect(point.value == durations[max(1, Int((q * Double(durations.count)).rounded(.up))) - 1])
            }
        }
        let rate = try await runtime.traces.queryMetrics("{ source = \"ui-factory\" } | rate()", since: since, until: until, step: 100_000_000_000)
        #expect(rate.series.count == 1 && rate.series[0].points.count == 12)
        let total = rate.series[0].points.reduce(0) { $0 + $1.value * 100 }
        #expect(abs(total - Double(spans.filter { $0.source == "ui-factory" }.count)) < 0.001)

        // Refusals: a metrics query for traces and the other way, one that does not parse (with
        // its column), a step that gives too many points.
        for (call, field, words) in [
            ({ try await runtime.traces.queryTraces("{ source = \"a\" } | rate()", search: TraceSearch()) as Any }, "q", "metrics query"),
            ({ try await runtime.traces.queryMetrics("{ source = \"a\" }", since: nil, until: nil, step: nil) as Any }, "q", "not a metrics query"),
            ({ try await runtime.traces.queryTraces("{ source = }", search: TraceSearch()) as Any }, "q", "column 12"),
            (
                { try await runtime.traces.queryMetrics("{ source = \"a\" } | rate()", since: since, until: until, step: 1_000_000_000) as Any },
                "step", "points"
            ),
        ] as [(() async throws -> Any, String, String)] {
            do {
                _ = try await call()
                Issue.record("answered: \(words)")
            } catch let error as CoreError {
                #expect(error.code == .invalidArgument && error.field == field && error.message.contains(words), "\(error)")
            }
        }
        await runtime.close()
    }
}
