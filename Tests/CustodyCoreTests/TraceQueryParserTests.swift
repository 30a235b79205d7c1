import CustodyLogTesting
import Testing

@testable import CustodyCore

/// The query language's parser (docs/analysis.md, "The query language"): queries read as meant,
/// precedence included; malformed ones refused at the right column with what was expected; and
/// no input — random or mutated — crashes it or reports a column outside the text.
struct TraceQueryParserTests {
    static func source(_ value: String) -> SpanCondition { .comparison(.source, .equal, .string(value)) }

    @Test func queriesParseAsMeant() throws {
        #expect(try TraceQuery(parsing: "{}") == TraceQuery(spansets: .spanset(nil)))
        #expect(
            try TraceQuery(parsing: #"{ source = "data-factory" && duration > 100ms }"#)
                == TraceQuery(spansets: .spanset(.and(Self.source("data-factory"), .comparison(.duration, .greater, .duration(100)))))
        )
        // Spansets: the structural operators bind tighter than &&, which binds tighter than ||.
        #expect(
            try TraceQuery(parsing: #"{source="a"} && {source="b"} || {source="c"} > {source="d"} >> {}"#)
                == TraceQuery(
                    spansets: .or(
                        .and(.spanset(Self.source("a")), .spanset(Self.source("b"))),
                        .descendant(.child(.spanset(Self.source("c")), .spanset(Self.source("d"))), .spanset(nil))
                    )
                )
        )
        #expect(
            try TraceQuery(parsing: #"{source="a"} && ({source="b"} || {source="c"})"#)
                == TraceQuery(spansets: .and(.spanset(Self.source("a")), .or(.spanset(Self.source("b")), .spanset(Self.source("c")))))
        )
        // Conditions: ! binds tightest, then &&, then ||.
        #expect(
            try TraceQuery(parsing: #"{ !source = "a" || source = "b" && stage != null }"#)
                == TraceQuery(
                    spansets: .spanset(.or(.not(Self.source("a")), .and(Self.source("b"), .comparison(.stage, .notEqual, .null))))
                )
        )
        #expect(
            try TraceQuery(parsing: #"{ !(source = "a" || source = "b") }"#)
                == TraceQuery(spansets: .spanset(.not(.or(Self.source("a"), Self.source("b")))))
        )
        #expect(
            try TraceQuery(parsing: #"{ .http.status >= 500 && .http.user-agent =~ "curl/.*" && .retry = true }"#)
                == TraceQuery(
                    spansets: .spanset(
                        .and(
                            .and(
                                .comparison(.detail(["http", "status"]), .greaterOrEqual, .number(500)),
                                .comparison(.detail(["http", "user-agent"]), .matches, .string("curl/.*"))
                            ),
                            .comparison(.detail(["retry"]), .equal, .bool(true))
                        )
                    )
                )
        )
        #expect(
            try TraceQuery(parsing: #"{ status = error } >> { source !~ "ops.*" } | count() > 2 | avg(duration) <= 1.5s"#)
                == TraceQuery(
                    spansets: .descendant(
                        .spanset(.comparison(.status, .equal, .status(isError: true))),
                        .spanset(.comparison(.source, .doesNotMatch, .string("ops.*")))
                    ),
                    filters: [
                        AggregateFilter(aggregate: .count, comparison: .greater, value: 2),
                        AggregateFilter(aggregate: .avg, comparison: .lessOrEqual, value: 1500),
                    ]
                )
        )
        #expect(
            try TraceQuery(parsing: "{ status != ok } | quantile_over_time(duration, 0.5, 0.99) by (source, .region)")
                == TraceQuery(
                    spansets: .spanset(.comparison(.status, .notEqual, .status(isError: false))),
                    metric: MetricFunction(kind: .quantileOverTime([0.5, 0.99]), groupedBy: [.source, .detail(["region"])])
                )
        )
        #expect(try TraceQuery(parsing: "{} | rate()").metric == MetricFunction(kind: .rate, groupedBy: []))
        #expect(
            try TraceQuery(parsing: "{} | max(duration) > 1m | count_over_time() by (operation, stage)").metric?.groupedBy == [.operation, .stage]
        )
        #expect(try TraceQuery(parsing: "{} | avg_over_time(duration)").metric?.kind == .avgOverTime)
        // Durations in milliseconds; strings with their escapes.
        for (text, milliseconds) in [
            ("800us", 0.8), ("800µs", 0.8), ("250ns", 0.00025), ("1.5s", 1500), ("2m", 120_000), ("1h", 3_600_000), ("0ms", 0),
        ] {
            #expect(
                try TraceQuery(parsing: "{ duration < \(text) }")
                    == TraceQuery(spansets: .spanset(.comparison(.duration, .less, .duration(milliseconds))))
            )
        }
        #expect(
            try TraceQuery(parsing: #"{ operation = "say \"hi\"\\\n\t" }"#)
                == TraceQuery(spansets: .spanset(.comparison(.operation, .equal, .string("say \"hi\"\\\n\t"))))
        )
        #expect(try TraceQuery(parsing: "{ .n = -1.25 }") == TraceQuery(spansets: .spanset(.comparison(.detail(["n"]), .equal, .number(-1.25)))))
        #expect(try TraceQuery(parsing: "{ .n = .5 }") == TraceQuery(spansets: .spanset(.comparison(.detail(["n"]), .equal, .number(0.5)))))
        #expect(
            try TraceQuery(parsing: #"  {trace_id="t"&&span_id!=null&&parent_span_id=null&&task_uuid="u"}  "#).spansets
                == .spanset(
                    .and(
                        .and(
                            .and(.comparison(.traceId, .equal, .string("t")), .comparison(.spanId, .notEqual, .null)),
                            .comparison(.parentSpanId, .equal, .null)
                        ),
                        .comparison(.taskUUID, .equal, .string("u"))
                    )
                )
        )
    }

    /// Malformed queries: the column of the first error, and a piece of what it says.
    static let malformed: [(query: String, column: Int, says: String)] = [
        ("", 1, "expected a spanset"),
        ("   ", 4, "expected a spanset"),
        (#"source = "x""#, 1, "expected a spanset"),
        ("{", 2, "expected a field"),
        ("{ source }", 10, "expected a comparison"),
        ("{ source = }", 12, "expected a value"),
        (#"{ source = "x""#, 15, "expected &&, || or }"),
        (#"{ source == "x" }"#, 10, "comparisons use a single ="),
        (#"{ colour = "red" }"#, 3, "expected a field"),
        ("{ duration > 100 }", 14, "expected a duration"),
        (#"{ duration > "1s" }"#, 14, "expected a duration"),
        ("{ duration =~ 1s }", 12, "duration is not text"),
        (#"{ status = "error" }"#, 12, "expected error or ok"),
        ("{ status > error }", 10, "expected = or !="),
        (#"{ source > "a" }"#, 10, "a text field"),
        ("{ source = 3 }", 12, #"expected a "string""#),
        (#"{ source =~ "(" }"#, 13, "valid regular expression"),
        ("{ .http.status =~ 5 }", 19, "regular expression"),
        ("{ . = 1 }", 4, "expected a name after ."),
        (#"{ source = "x }"#, 12, "to end the string"),
        (#"{ source = "a\qb" }"#, 14, "expected an escape"),
        ("{ duration > 5parsecs }", 15, "duration unit"),
        ("{ duration > -1ms }", 14, "0 or more"),
        (#"{ source = "x" } &&"#, 20, "expected a spanset"),
        ("{ } >", 6, "expected a spanset"),
        ("{ } { }", 5, "expected &&, ||, >, >>, | or the end"),
        ("({ }", 5, "expected &&, ||, >, >> or )"),
        ("{ } )", 5, "expected &&, ||, >, >>, | or the end"),
        ("{ } |", 6, "expected an aggregate"),
        ("{ } | counts() > 1", 7, "expected an aggregate"),
        ("{ } | count > 1", 13, "expected ("),
        ("{ } | count() > 1s", 17, "expected a number"),
        ("{ } | avg() > 1s", 11, "expected duration"),
        ("{ } | avg(duration) > 3", 23, "expected a duration"),
        ("{ } | avg(duration) =~ 1s", 21, "expected a comparison"),
        ("{ } | rate() | count() > 1", 14, "a metric function comes last"),
        ("{ } | rate() by source", 17, "expected ("),
        ("{ } | rate() by (colour)", 18, "expected source, operation, stage"),
        ("{ } | rate() by (source", 24, "expected , or )"),
        ("{ } | quantile_over_time(duration)", 34, "expected , and a quantile"),
        ("{ } | quantile_over_time(duration, 1.5)", 36, "a quantile from 0 to 1"),
        ("{ } | avg_over_time()", 21, "expected duration"),
        ("{ } | rate(duration)", 12, "expected )"),
        (#"{ source = "a" & stage = "b" }"#, 16, "a single &"),
        (#"{ source = "a" &&& stage = "b" }"#, 18, "a single &"),
        ("{ !}", 4, "expected a field"),
        (#"{ (source = "a" }"#, 17, "expected &&, || or )"),
        (#"{ source = "a" } > > { }"#, 20, "expected a spanset"),
        ("{ 3 = 3 }", 3, "expected a field"),
        (#"{ source = "a" @ }"#, 16, "unexpected character"),
        ("{ duration > 1.2.3ms }", 14, "expected a number"),
        ("{ span_id = true }", 13, #"expected a "string""#),
        ("{ .a. = 1 }", 6, "expected a name after ."),
        ("{" + String(repeating: "!", count: 70) + #"source = "a" }"#, 65, "less nesting"),
        (String(repeating: " ", count: 5000), 4097, "at most 4096 characters"),
        ("{ status = ok } || ", 20, "expected a spanset"),
        ("{ duration >= }", 15, "expected a value"),
        ("{ task_uuid != 1ms }", 16, #"expected a "string""#),
        ("{ } >> ", 8, "expected a spanset"),
        ("{ } | count() > 1 extra", 19, "expected | or the end"),
    ]

    @Test func malformedQueriesAreRefusedAtTheirColumn() {
        #expect(Self.malformed.count >= 50)
        for (query, column, says) in Self.malformed {
            do {
                _ = try TraceQuery(parsing: query)
                Issue.record("\(query.prefix(60)) parsed")
            } catch {
                #expect(error.column == column && error.message.contains(says), "\(query.prefix(60)): \(error)")
            }
        }
    }

    /// Random text over the language's characters, and valid queries with characters deleted,
    /// doubled or swapped: each parses or fails with a column inside the text (or just after it).
    @Test func noInputCrashesTheParser() {
        let alphabet = Array(#"{}()|&!=<>~"\.,:- _aeimnorstuyz0123456789msµé{"#)
        let valid = [
            #"{ source = "data-factory" && duration > 100ms } >> { status = error } | count() > 2"#,
            #"{ .http.status >= 500 || !(stage = "x") } | quantile_over_time(duration, 0.5, 0.99) by (source)"#,
            #"({} > {}) || {operation =~ "a.*"} | avg(duration) < 1s | rate() by (.region)"#,
        ]
        var random = SplitMix64(seed: 23)
        var parsed = 0
        for round in 0..<20_000 {
            var characters: [Character]
            if round % 2 == 0 {
                characters = (0..<Int(random.next(upperBound: 40))).map { _ in alphabet[Int(random.next(upperBound: UInt64(alphabet.count)))] }
            } else {
                characters = Array(valid[Int(random.next(upperBound: UInt64(valid.count)))])
                for _ in 0...Int(random.next(upperBound: 3)) where !characters.isEmpty {
                    let at = Int(random.next(upperBound: UInt64(characters.count)))
                    switch random.next(upperBound: 3) {
                    case 0: characters.remove(at: at)
                    case 1: characters.insert(characters[at], at: at)
                    default: characters[at] = alphabet[Int(random.next(upperBound: UInt64(alphabet.count)))]
                    }
                }
            }
            let text = String(characters)
            do {
                _ = try TraceQuery(parsing: text)
                parsed += 1
            } catch {
                #expect((1...(text.count + 1)).contains(error.column), "\(text): \(error)")
                #expect(!error.message.isEmpty)
            }
        }
        #expect(parsed > 100, "only \(parsed) inputs parsed: the mutations never leave a valid query")
    }
}
