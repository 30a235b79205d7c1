/// Two traces side by side (docs/api.md "Traces", compare): spans aligned by (source, operation,
/// stage, occurrence) — the n-th span with that key in one trace pairs with the n-th in the other
/// — or, when one trace replays the other, through each replay span's `details.original_seq`.
/// A pair deviates when the durations differ by more than 10%.
public struct TraceComparison: Sendable {
    public struct Pair: Sendable {
        public var a: SpanRecord
        public var b: SpanRecord
        public var deltaMs: Double?
        public var deviates: Bool
    }

    public var a: TraceSummaryRecord
    public var b: TraceSummaryRecord
    public var pairs: [Pair]
    public var onlyA: [SpanRecord]
    public var onlyB: [SpanRecord]

    /// More than this fraction apart is a deviation.
    public static let deviationThreshold = 0.10

    init(a: (spans: [SpanRecord], summary: TraceSummaryRecord), b: (spans: [SpanRecord], summary: TraceSummaryRecord)) {
        self.a = a.summary
        self.b = b.summary
        struct Key: Hashable {
            var source: String
            var operation: String
            var stage: String
            var occurrence: Int
        }
        func keyed(_ spans: [SpanRecord]) -> [(Key, SpanRecord)] {
            var seen: [Key: Int] = [:]
            return spans.map { record in
                var key = Key(source: record.span.source, operation: record.span.operation, stage: record.span.stage, occurrence: 0)
                key.occurrence = seen[key, default: 0]
                seen[key] = key.occurrence + 1
                return (key, record)
            }
        }
        var pairs: [Pair] = []
        var unmatchedB: [SpanRecord] = []
        var matchedA: Set<UInt64> = []
        // A replay's spans point at the original's seq.
        let bySeqA = Dictionary(a.spans.map { ($0.seq, $0) }, uniquingKeysWith: { first, _ in first })
        var remainingB: [SpanRecord] = []
        for record in b.spans {
            // The replay_span_end of an original span carries its duration; its start and any
            // replay_error are the replay's own spans.
            if record.span.stage == SpanStage.replaySpanEnd.rawValue, let original = Self.originalSeq(record.span), let match = bySeqA[original],
                !matchedA.contains(match.seq)
            {
                pairs.append(Self.pair(match, record))
                matchedA.insert(match.seq)
            } else {
                remainingB.append(record)
            }
        }
        var byKeyA: [Key: SpanRecord] = [:]
        for (key, record) in keyed(a.spans.filter { !matchedA.contains($0.seq) }) { byKeyA[key] = record }
        for (key, record) in keyed(remainingB) {
            if let match = byKeyA.removeValue(forKey: key) {
                pairs.append(Self.pair(match, record))
                matchedA.insert(match.seq)
            } else {
                unmatchedB.append(record)
            }
        }
        pairs.sort { ($0.a.span.timestamp, $0.a.seq) < ($1.a.span.timestamp, $1.a.seq) }
        self.pairs = pairs
        self.onlyA = a.spans.filter { !matchedA.contains($0.seq) }
        self.onlyB = unmatchedB
    }

    /// The same comparison seen from the other side.
    var swapped: TraceComparison {
        var result = self
        swap(&result.a, &result.b)
        swap(&result.onlyA, &result.onlyB)
        result.pairs = pairs.map { Pair(a: $0.b, b: $0.a, deltaMs: $0.deltaMs.map { -$0 }, deviates: $0.deviates) }
        result.pairs.sort { ($0.a.span.timestamp, $0.a.seq) < ($1.a.span.timestamp, $1.a.seq) }
        return result
    }

    static func originalSeq(_ span: Span) -> UInt64? {
        guard let details = span.details, details.hasTopLevelKey("original_seq"),
            case .integer(let seq)? = details.jsonValue.objectValue?["original_seq"], seq >= 0
        else { return nil }
        return UInt64(seq)
    }

    static func pair(_ a: SpanRecord, _ b: SpanRecord) -> Pair {
        guard let durationA = a.span.durationMs, let durationB = b.span.durationMs else {
            return Pair(a: a, b: b, deltaMs: nil, deviates: false)
        }
        let delta = durationB - durationA
        let deviates = durationA == 0 ? durationB > 0 : abs(delta) / durationA > deviationThreshold
        return Pair(a: a, b: b, deltaMs: delta, deviates: deviates)
    }

    public var jsonValue: JSONValue {
        .object([
            "a": a.jsonValue, "b": b.jsonValue,
            "pairs": .array(
                pairs.map { pair in
                    .object([
                        "source": .string(pair.a.span.source), "operation": .string(pair.a.span.operation), "stage": .string(pair.a.span.stage),
                        "a": pair.a.jsonValue, "b": pair.b.jsonValue,
                        "a_duration_ms": pair.a.span.durationMs.map(JSONValue.number) ?? .null,
                        "b_duration_ms": pair.b.span.durationMs.map(JSONValue.number) ?? .null,
                        "delta_ms": pair.deltaMs.map(JSONValue.number) ?? .null, "deviates": .bool(pair.deviates),
                    ])
                }
            ),
            "only_a": .array(onlyA.map(\.jsonValue)), "only_b": .array(onlyB.map(\.jsonValue)),
            "deviations": .integer(Int64(pairs.count { $0.deviates })),
        ])
    }
}

extension TraceQueries {
    /// Compares two traces; `trace_not_found` names the one that does not exist.
    public func compareTraces(_ a: String, _ b: String) async throws(CoreError) -> TraceComparison {
        let (firstSpans, firstSummary, _) = try await getTrace(a)
        let (secondSpans, secondSummary, _) = try await getTrace(b)
        let first = (spans: firstSpans, summary: firstSummary)
        let second = (spans: secondSpans, summary: secondSummary)
        guard first.summary.replayOf == b, second.summary.replayOf != a else { return TraceComparison(a: first, b: second) }
        // `a` replays `b`: match through a's original seqs, then put the sides back.
        return TraceComparison(a: second, b: first).swapped
    }
}
