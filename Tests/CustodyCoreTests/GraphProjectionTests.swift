import CustodyLog
import CustodyLogTesting
import Foundation
import GRDB
import Testing

@testable import CustodyCore

/// The custody graph the projector keeps (docs/analysis.md, "The custody graph") against a
/// recomputation from `operation_logs` that reads the rule literally, on hand-built traces and on
/// a varied log projected in random batches with the projector stopped and restarted.
@Suite struct GraphProjectionTests {
    /// A stored span as the recomputation reads it.
    struct StoredSpan {
        var seq: Int64
        var traceId: String
        var spanId: String?
        var parentSpanId: String?
        var source: String
        var timestamp: Int64
        var durationMs: Double?
        var isError: Bool
    }

    /// One graph row as counted: spans or calls, errors, and the durations themselves.
    struct Expected: Equatable {
        var count: Int64 = 0
        var errors: Int64 = 0
        var durations: [Double] = []
    }

    static func spans(_ db: Database) throws -> [StoredSpan] {
        try Row.fetchAll(
            db,
            sql: "SELECT seq, trace_id, span_id, parent_span_id, source, timestamp, duration_ms, is_error FROM operation_logs ORDER BY seq"
        ).map {
            StoredSpan(
                seq: $0[0],
                traceId: $0[1],
                spanId: $0[2],
                parentSpanId: $0[3],
                source: $0[4],
                timestamp: $0[5],
                durationMs: $0[6],
                isError: ($0[7] as Int64) != 0
            )
        }
    }

    /// The rule, literally: every span counts at its source in its minute; a span whose parent —
    /// the lowest-seq span of its trace with that span id, applied before or after it — is of
    /// another source counts as a call from that source, in the child's minute.
    static func recompute(_ spans: [StoredSpan]) -> [GraphProjection.Key: Expected] {
        var rows: [GraphProjection.Key: Expected] = [:]
        func count(_ span: StoredSpan, from: String?) {
            let key = GraphProjection.Key(minute: GraphProjection.minute(ofTimestamp: span.timestamp), from: from, source: span.source)
            rows[key, default: Expected()].count += 1
            if span.isError { rows[key, default: Expected()].errors += 1 }
            if let duration = span.durationMs { rows[key, default: Expected()].durations.append(duration) }
        }
        // The lowest-seq span of each (trace, span id).
        var first: [String: StoredSpan] = [:]
        for span in spans {
            guard let id = span.spanId else { continue }
            let key = span.traceId + "\u{0}" + id
            if let known = first[key], known.seq < span.seq { continue }
            first[key] = span
        }
        for span in spans {
            count(span, from: nil)
            guard let parentId = span.parentSpanId, let parent = first[span.traceId + "\u{0}" + parentId] else { continue }
            if parent.source != span.source { count(span, from: parent.source) }
        }
        return rows
    }

    /// The graph's rows as stored.
    static func storedRows(_ db: Database) throws -> [GraphProjection.Key: GraphProjection.Tally] {
        var rows: [GraphProjection.Key: GraphProjection.Tally] = [:]
        for row in try Row.fetchAll(db, sql: "SELECT minute, NULL, source, spans, errors, durations FROM graph_nodes")
            + Row.fetchAll(db, sql: "SELECT minute, from_source, to_source, calls, errors, durations FROM graph_edges")
        {
            let histogram = try #require(LatencyHistogram(text: row[5]))
            rows[GraphProjection.Key(minute: row[0], from: row[1], source: row[2])] = GraphProjection.Tally(
                count: row[3],
                errors: row[4],
                durations: histogram
            )
        }
        return rows
    }

    /// Every stored row equals the recomputation's: counts exactly, and each duration in its bucket.
    static func expectEqual(_ stored: [GraphProjection.Key: GraphProjection.Tally], _ expected: [GraphProjection.Key: Expected]) {
        #expect(Set(stored.keys) == Set(expected.keys), "rows: \(stored.count) stored, \(expected.count) recomputed")
        for (key, want) in expected {
            guard let got = stored[key] else { continue }
            var histogram = LatencyHistogram()
            for duration in want.durations { histogram.add(ms: duration) }
            #expect(got == GraphProjection.Tally(count: want.count, errors: want.errors, durations: histogram), "\(key)")
        }
    }

    /// The nearest-rank quantile of durations, exactly.
    static func exactQuantile(_ durations: [Double], _ q: Double) -> Double? {
        guard !durations.isEmpty else { return nil }
        let sorted = durations.sorted()
        return sorted[max(1, Int((q * Double(sorted.count)).rounded(.up))) - 1]
    }

    /// The links cache is bounded by the spans its traces hold, not by a number of traces: many
    /// large traces push the oldest out as soon as few small ones would (docs/benchmarks.md P9).
    @Test func theLinksCacheIsBoundedBySpans() {
        func trace(_ spans: Int) -> TraceLinks {
            var links = TraceLinks()
            var changes = GraphProjection.Changes()
            for index in 0..<spans {
                let call = GraphProjection.Call(source: "s\(index % 3)", minute: 0, durationMs: 1, isError: false)
                links.add(.init(spanId: "span-\(index)", parentSpanId: index == 0 ? nil : "span-\(index - 1)", call: call), into: &changes)
            }
            return links
        }
        var cache = TraceLinksCache(capacity: 100)
        // Ten traces of 10 spans fill one generation, the next ten the other: all still there.
        for index in 0..<20 { cache.record(["big-\(index)": trace(10)]) }
        #expect((0..<20).allSatisfy { cache.links(of: "big-\($0)") != nil })
        #expect(cache.links(of: "big-0")?.spanCount == 10)
        // Ten more: the first ten are dropped.
        for index in 20..<30 { cache.record(["big-\(index)": trace(10)]) }
        #expect((0..<10).allSatisfy { cache.links(of: "big-\($0)") == nil })
        #expect((10..<30).allSatisfy { cache.links(of: "big-\($0)") != nil })
        // One-span traces: a hundred of them per generation.
        var small = TraceLinksCache(capacity: 100)
        for index in 0..<150 { small.record(["small-\(index)": trace(1)]) }
        #expect((0..<150).allSatisfy { small.links(of: "small-\($0)") != nil })
    }

    @Test func handBuiltTracesGiveTheirHandOffs() async throws {
        let directory = ProjectionTests.temporaryDirectory()
        defer { removeDataDirectory(directory) }
        let minute: Int64 = 29_895_660  // 2026-11-03T12:00Z in minutes
        let t0 = minute * 60_000_000_000
        func span(_ trace: String, _ id: String?, parent: String?, _ source: String, at seconds: Int64, ms: Double?, error: Bool = false) -> Event {
            Event(
                seq: 0,
                ingestedAt: 0,
                body: .span(
                    Span(
                        traceId: trace,
                        spanId: id,
                        parentSpanId: parent,
                        source: source,
                        stage: error ? "error" : "processing",
                        operation: "op",
                        durationMs: ms,
                        timestamp: t0 + seconds * 1_000_000_000
                    )
                )
            )
        }
        // Batches of one trace each time, in the order written: a child before its parent (in a
        // later batch), a same-source call, a span id given twice (the first wins), a parent
        // never recorded, a call crossing into the next minute, a span its own parent.
        let batches: [[Event]] = [
            [span("t1", "c1", parent: "p1", "data-factory", at: 1, ms: 40, error: true)],
            [
                span("t1", "p1", parent: nil, "agent-factory", at: 0, ms: 100),
                span("t1", "c2", parent: "p1", "agent-factory", at: 2, ms: 10),
            ],
            [span("t1", "p1", parent: nil, "ui-factory", at: 3, ms: 5), span("t1", "c3", parent: "p1", "ui-factory", at: 70, ms: 8)],
            [span("t2", "x", parent: "gone", "orchestrator", at: 4, ms: nil), span("t2", "y", parent: "y", "orchestrator", at: 5, ms: 1)],
        ]
        let store = try SQLiteProjectionStore(path: directory + "/p.sqlite")
        var seq: UInt64 = 0
        for batch in batches {
            let events = batch.map { event -> Event in
                seq += 1
                return Event(seq: seq, ingestedAt: event.ingestedAt, body: event.body)
            }
            try await store.apply(events)
        }
        let window = try await store.graph(fromMinute: minute, throughMinute: minute + 1)
        let graph = CustodyGraph(window, fromMinute: minute, throughMinute: minute + 1)
        #expect(
            graph.edges.map { "\($0.from)>\($0.to) \($0.calls) \($0.errors)" } == ["agent-factory>data-factory 1 1", "agent-factory>ui-factory 1 0"]
        )
        #expect(graph.edges[0].p50Ms.map { LatencyHistogram.bucket(ofMs: $0) } == LatencyHistogram.bucket(ofMs: 40))
        #expect(
            graph.nodes.map { "\($0.source) \($0.spans) \($0.errors)" } == [
                "agent-factory 2 0", "orchestrator 2 0", "ui-factory 2 0", "data-factory 1 1",
            ]
        )
        // The orchestrator's span without a duration counts, but not in its percentiles.
        #expect(graph.nodes[1].p99Ms.map { LatencyHistogram.bucket(ofMs: $0) } == LatencyHistogram.bucket(ofMs: 1))
        // The call at 12:01:10 is in the next minute only.
        let second = CustodyGraph(
            try await store.graph(fromMinute: minute + 1, throughMinute: minute + 1),
            fromMinute: minute + 1,
            throughMinute: minute + 1
        )
        #expect(second.edges.map { "\($0.from)>\($0.to)" } == ["agent-factory>ui-factory"])
        // With a source: the edges into and out of it, and the nodes they join.
        let filtered = CustodyGraph(window, fromMinute: minute, throughMinute: minute + 1, source: "data-factory")
        #expect(filtered.edges.count == 1 && Set(filtered.nodes.map(\.source)) == ["agent-factory", "data-factory"])
        try store.closeDatabase()
    }

    @Test func aVariedLogInRandomBatchesWithRestartsEqualsARecomputation() async throws {
        let directory = ProjectionTests.temporaryDirectory()
        defer { removeDataDirectory(directory) }
        let log = try await SegmentLog.open(directory: directory + "/log")
        var generator = ScenarioGenerator(seed: 4242)
        var random = SplitMix64(seed: 4243)
        let path = directory + "/p.sqlite"
        for _ in 0..<8 {
            _ = try await log.append((0..<(1500 + Int(random.next(upperBound: 1500)))).map { _ in EventCodec.encode(generator.next()) })
            // Restarted each round: the links of traces applied before come from their spans.
            let store = try SQLiteProjectionStore(path: path)
            try await Projector(log: log, store: store, batchSize: 1 + Int(random.next(upperBound: 700))).catchUp()
            try store.closeDatabase()
        }
        let store = try SQLiteProjectionStore(path: path)
        let (stored, spans) = try await store.read { db in (try Self.storedRows(db), try Self.spans(db)) }
        let expected = Self.recompute(spans)
        // Every pair of the three sources hands off, in more than one minute.
        #expect(Set(expected.keys.compactMap { key in key.from.map { [$0, key.source] } }).count == 6, "too few hand-offs to test anything")
        #expect(Set(expected.keys.map(\.minute)).count > 1)
        Self.expectEqual(stored, expected)

        // The answer over the whole log: totals and percentiles from the recomputation.
        let minutes = stored.keys.map(\.minute)
        let graph = CustodyGraph(
            try await store.graph(fromMinute: minutes.min()!, throughMinute: minutes.max()!),
            fromMinute: minutes.min()!,
            throughMinute: minutes.max()!
        )
        var totals: [GraphProjection.Pair: Expected] = [:]
        for (key, row) in expected {
            totals[GraphProjection.Pair(from: key.from, source: key.source), default: Expected()].count += row.count
            totals[GraphProjection.Pair(from: key.from, source: key.source), default: Expected()].errors += row.errors
            totals[GraphProjection.Pair(from: key.from, source: key.source), default: Expected()].durations += row.durations
        }
        let answered =
            graph.nodes.map { (GraphProjection.Pair(from: nil, source: $0.source), $0.spans, $0.errors, $0.p50Ms, $0.p99Ms) }
            + graph.edges.map { (GraphProjection.Pair(from: $0.from, source: $0.to), $0.calls, $0.errors, $0.p50Ms, $0.p99Ms) }
        #expect(answered.count == totals.count)
        for (pair, count, errors, p50, p99) in answered {
            let want = try #require(totals[pair])
            #expect(count == want.count && errors == want.errors, "\(pair)")
            for (q, got) in [(0.5, p50), (0.99, p99)] {
                let exact = Self.exactQuantile(want.durations, q)
                #expect(
                    got.map(LatencyHistogram.bucket(ofMs:)) == exact.map(LatencyHistogram.bucket(ofMs:)),
                    "\(pair) q\(q): \(String(describing: got)) vs \(String(describing: exact))"
                )
                if let got, let exact, exact > 0.01 { #expect(abs(got - exact) <= exact * 0.045, "\(pair) q\(q)") }
            }
        }

        // A database from before the graph: its spans are counted when it opens.
        try store.closeDatabase()
        let before = try DatabaseQueue(path: path)
        try await before.write { db in
            try db.execute(sql: "DELETE FROM graph_nodes")
            try db.execute(sql: "DELETE FROM graph_edges")
            try db.execute(sql: "INSERT INTO graph_backfill (through_seq) SELECT MAX(seq) FROM operation_logs")
        }
        try before.close()
        let reopened = try SQLiteProjectionStore(path: path)
        let backfilled = try await reopened.read { db in try Self.storedRows(db) }
        Self.expectEqual(backfilled, expected)
        #expect(try await reopened.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM graph_backfill") } == 0)
        try reopened.closeDatabase()
        await log.close()
    }
}
