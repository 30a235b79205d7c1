import CustodyLog
import CustodyLogTesting
import Testing

@testable import CustodyCore

/// The critical path (docs/analysis.md, "Critical path") on hand-built traces with known answers,
/// and against a literal, recursive reading of its rules on random trees.
struct CriticalPathTests {
    /// A span from `from` to `to` milliseconds; seqs follow the order of creation.
    struct Builder {
        var records: [SpanRecord] = []

        mutating func span(
            _ id: String?,
            parent: String? = nil,
            source: String = "svc",
            _ from: Int64,
            _ to: Int64?,
            operation: String? = nil
        ) {
            let span = Span(
                traceId: "t",
                spanId: id,
                parentSpanId: parent,
                source: source,
                operation: operation ?? id ?? "op",
                durationMs: to.map { Double($0 - from) },
                timestamp: 1_000_000_000_000 + from * 1_000_000
            )
            records.append(SpanRecord(seq: UInt64(records.count + 1), span: span))
        }

        var path: CriticalPath { CriticalPath(traceId: "t", spans: records) }
    }

    /// Each span on the path (by operation) with its time on it in milliseconds.
    static func selfTimes(_ path: CriticalPath) -> [String: Int64] {
        Dictionary(uniqueKeysWithValues: path.steps.map { ($0.record.span.operation, $0.selfNanoseconds / 1_000_000) })
    }

    static func expectAddsUp(_ path: CriticalPath, sourceLocation: SourceLocation = #_sourceLocation) {
        let total = path.steps.reduce(path.gapNanoseconds) { $0 + $1.selfNanoseconds }
        #expect(
            total == path.durationNanoseconds,
            "the path's times add up to \(total), not \(path.durationNanoseconds)",
            sourceLocation: sourceLocation
        )
    }

    @Test func sequentialChildrenAreAllOnThePath() {
        var trace = Builder()
        trace.span("root", 0, 100)
        trace.span("a", parent: "root", 10, 40)
        trace.span("b", parent: "root", 40, 90)
        let path = trace.path
        #expect(Self.selfTimes(path) == ["root": 20, "a": 30, "b": 50])
        #expect(path.steps.map(\.record.span.operation) == ["root", "a", "b"])
        #expect(path.steps[0].sections == [0..<10_000_000, 90_000_000..<100_000_000])
        Self.expectAddsUp(path)
    }

    @Test func aFanOutIsDecidedByTheChildThatEndedLast() {
        var trace = Builder()
        trace.span("root", 0, 100)
        trace.span("a", parent: "root", 10, 60)
        trace.span("b", parent: "root", 10, 80)
        trace.span("c", parent: "root", 20, 50)
        trace.span("b1", parent: "b", 30, 70)
        let path = trace.path
        #expect(Self.selfTimes(path) == ["root": 30, "b": 30, "b1": 40])
        #expect(path.steps.map(\.depth) == [0, 1, 2])
        #expect(path.bySource == ["svc": 100_000_000])
        Self.expectAddsUp(path)
    }

    @Test func aChildThatOutlivesItsParentHoldsThePathToTheEnd() {
        var trace = Builder()
        trace.span("root", 0, 100)
        trace.span("a", parent: "root", 50, 150)
        trace.span("a1", parent: "a", 120, 160)
        let path = trace.path
        #expect(path.durationNanoseconds == 160_000_000)
        #expect(Self.selfTimes(path) == ["root": 50, "a": 70, "a1": 40])
        Self.expectAddsUp(path)
    }

    @Test func aChildWhoseClockRunsBehindItsParentsStillAddsUp() {
        var trace = Builder()
        trace.span("root", source: "orchestrator", 100, 200)
        // data-factory's clock is 30 ms behind: its child seems to start before its parent.
        trace.span("load", parent: "root", source: "data-factory", 80, 150)
        let path = trace.path
        #expect(path.durationNanoseconds == 120_000_000)
        #expect(Self.selfTimes(path) == ["root": 50, "load": 70])
        #expect(path.bySource == ["orchestrator": 50_000_000, "data-factory": 70_000_000])
        Self.expectAddsUp(path)
    }

    @Test func spansWithoutParentLinksAreNestedByTimePerSource() {
        var trace = Builder()
        trace.span(nil, source: "orchestrator", 0, 100, operation: "request")
        trace.span(nil, source: "orchestrator", 10, 30, operation: "validate")
        trace.span(nil, source: "orchestrator", 95, nil, operation: "response_sent")
        trace.span(nil, source: "worker", 20, 90, operation: "work")
        let path = trace.path
        // The worker's span has no parent and none of its source encloses it: it is top-level,
        // beside the request, and ends before it.
        #expect(Self.selfTimes(path) == ["request": 80, "validate": 20])
        #expect(path.gapNanoseconds == 0)
        #expect(path.steps.map(\.depth) == [0, 1])
        Self.expectAddsUp(path)
    }

    @Test func timeCoveredByNoSpanIsTheGap() {
        var trace = Builder()
        trace.span(nil, source: "a", 0, 40, operation: "first")
        trace.span(nil, source: "b", 60, 100, operation: "second")
        let path = trace.path
        #expect(Self.selfTimes(path) == ["first": 40, "second": 40])
        #expect(path.gapNanoseconds == 20_000_000)
        Self.expectAddsUp(path)
    }

    @Test func anInstantSpanIsNotOnThePathAndACycleIsBroken() {
        var trace = Builder()
        trace.span("root", 0, 100)
        trace.span("mark", parent: "root", 100, nil)
        trace.span("x", parent: "y", 10, 20)
        trace.span("y", parent: "x", 30, 50)
        let path = trace.path
        #expect(path.steps.allSatisfy { $0.record.span.operation != "mark" })
        Self.expectAddsUp(path)
        #expect(CriticalPath(traceId: "t", spans: []).steps.isEmpty)
    }

    @Test func aChainOneHundredThousandDeepIsWalkedWithoutRecursion() {
        var trace = Builder()
        let depth: Int64 = 100_000
        for level in 0..<depth {
            trace.span("s\(level)", parent: level == 0 ? nil : "s\(level - 1)", level, 2 * depth - level)
        }
        let path = trace.path
        #expect(path.steps.count == Int(depth))
        #expect(path.steps.last?.depth == Int(depth) - 1)
        Self.expectAddsUp(path)
    }

    // MARK: Against a literal reading of the rules

    /// The rules read literally, recursively, in quadratic time: on trees with links only.
    struct Reference {
        let records: [SpanRecord]
        var children: [Int: [Int]] = [:]
        var start: [Int64]
        var end: [Int64]
        var selfTime: [Int: Int64] = [:]

        init(_ records: [SpanRecord]) {
            self.records = records
            start = records.map(\.span.timestamp)
            end = records.map(\.span.end)
            for (index, record) in records.enumerated() {
                if let parent = records.firstIndex(where: { $0.span.spanId == record.span.parentSpanId }) {
                    children[parent, default: []].append(index)
                }
            }
            widen(0)
            walk(0, from: end[0])
        }

        mutating func widen(_ node: Int) {
            for child in children[node] ?? [] {
                widen(child)
                start[node] = min(start[node], start[child])
                end[node] = max(end[node], end[child])
            }
        }

        mutating func walk(_ node: Int, from point: Int64) {
            var point = point
            var walked: Set<Int> = []
            while true {
                let candidates = (children[node] ?? []).filter { !walked.contains($0) && end[$0] <= point }
                guard
                    let next = candidates.max(by: {
                        (end[$0], start[$0], records[$0].seq) < (end[$1], start[$1], records[$1].seq)
                    })
                else {
                    selfTime[node, default: 0] += point - start[node]
                    return
                }
                walked.insert(next)
                selfTime[node, default: 0] += point - end[next]
                walk(next, from: end[next])
                point = start[next]
            }
        }
    }

    @Test(arguments: 0..<300)
    func randomTreesAgreeWithTheRulesReadLiterally(seed: Int) {
        var random = SplitMix64(seed: UInt64(seed) &+ 77)
        var trace = Builder()
        let count = 1 + Int(random.next(upperBound: 60))
        for index in 0..<count {
            let parent = index == 0 ? nil : "s\(random.next(upperBound: UInt64(index)))"
            let from = Int64(random.next(upperBound: 1000))
            // Some instants, some children outside their parents, ties in ends.
            let length = random.next(upperBound: 5) == 0 ? 0 : Int64(random.next(upperBound: 400))
            trace.span("s\(index)", parent: parent, from, from + length)
        }
        let path = trace.path
        let reference = Reference(trace.records)
        var expected: [UInt64: Int64] = [:]
        for (node, time) in reference.selfTime where time > 0 { expected[trace.records[node].seq] = time }
        var found: [UInt64: Int64] = [:]
        for step in path.steps where step.selfNanoseconds > 0 { found[step.record.seq] = step.selfNanoseconds }
        #expect(found == expected, "seed \(seed)")
        Self.expectAddsUp(path)
        // The sections tile the trace: no overlap, no hole.
        let sections = path.steps.flatMap(\.sections).sorted { $0.lowerBound < $1.lowerBound }
        var reached: Int64 = 0
        for section in sections {
            #expect(section.lowerBound == reached, "seed \(seed): a hole or an overlap at \(reached)")
            reached = section.upperBound
        }
        #expect(reached == path.durationNanoseconds)
    }
}
