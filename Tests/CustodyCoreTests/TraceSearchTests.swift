import CustodyLog
import CustodyLogTesting
import Foundation
import GRDB
import Testing

@testable import CustodyCore

/// `GET /api/traces` filters on a value found in few batches go through `value_batches` (a scan
/// of those batches' seq ranges); on a common value, through traces newest first. Both give the
/// same answers.
@Suite struct TraceSearchTests {
    /// A page after a cursor is one descending range of the `start` index: no union of index
    /// lookups sorted whole (`MULTI-INDEX OR`, `TEMP B-TREE FOR ORDER BY`), which on a
    /// 10M-event log read every trace since `since` for each page (docs/benchmarks.md, P14).
    @Test func aPageAfterACursorIsOneRangeOfTheStartIndex() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("custody-search-\(UUID().uuidString)").path
        defer { removeDataDirectory(directory) }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let store = try SQLiteProjectionStore(path: ProjectionPaths.database(in: directory))
        defer { try? store.closeDatabase() }
        let sql = SQLiteProjectionStore.searchSQL([
            SQLiteProjectionStore.afterCursor, "EXISTS (SELECT 1 FROM json_each(t.sources) s WHERE s.value = ?)", "t.start >= ?",
        ])
        let plan = try await store.read { db in
            try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN " + sql, arguments: [1_000, "t42", "s1", 0, 21]).map { $0["detail"] as String }
        }
        #expect(plan.contains { $0.contains("USING INDEX trace_summaries_by_start") }, "\(plan)")
        #expect(!plan.contains { $0.contains("MULTI-INDEX") }, "\(plan)")
        #expect(!plan.contains { $0 == "USE TEMP B-TREE FOR ORDER BY" }, "the page sorts every row it reads: \(plan)")
    }

    @Test func rareAndCommonValuesFindTheSameTracesAsTheyShould() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("custody-search-\(UUID().uuidString)").path
        defer { removeDataDirectory(directory) }
        // 1,000 traces of one span each, all with operation "common", in 100 appends; trace 500
        // also has operation "rare", trace 700 stage "odd".
        let log = try await SegmentLog.open(directory: directory)
        for append in 0..<100 {
            _ = try await log.append(
                (0..<10).map { i in
                    let n = append * 10 + i
                    return EventCodec.encode(
                        .span(
                            Span(
                                traceId: "t\(n)",
                                source: "s\(n % 3)",
                                stage: n == 700 ? "odd" : "processing",
                                operation: n == 500 ? "rare" : "common",
                                timestamp: 1_000_000 + Int64(n)
                            )
                        )
                    )
                }
            )
        }
        // Applied ten spans at a time: "common" is in 100 batches, more than a rare value's 64.
        let store = try SQLiteProjectionStore(path: ProjectionPaths.database(in: directory))
        try await Projector(log: log, store: store, batchSize: 10).catchUp()
        try store.closeDatabase()
        await log.close()

        let runtime = try await CoreRuntime.open(directory: directory)
        func ids(_ configure: (inout TraceSearch) -> Void) async throws -> [String] {
            var search = TraceSearch()
            configure(&search)
            return try await runtime.traces.searchTraces(search).traces.map(\.traceId)
        }
        #expect(try await ids { $0.operation = "rare" } == ["t500"])
        #expect(try await ids { $0.stage = "odd" } == ["t700"])
        #expect(
            try await ids {
                $0.operation = "common"
                $0.stage = "odd"
            } == ["t700"]
        )
        #expect(
            try await ids {
                $0.operation = "rare"
                $0.stage = "odd"
            } == []
        )
        #expect(try await ids { $0.operation = "nowhere" } == [])
        #expect(
            try await ids {
                $0.operation = "common"
                $0.limit = 3
            } == ["t999", "t998", "t997"]
        )
        #expect(
            try await ids {
                $0.source = "s1"
                $0.operation = "common"
                $0.limit = 2
            } == ["t997", "t994"]
        )
        #expect(
            try await ids {
                $0.operation = "rare"
                $0.source = "s2"
            } == ["t500"]
        )
        // Paging through a common value: every trace once, newest first.
        var seen: [String] = []
        var search = TraceSearch()
        search.operation = "common"
        search.limit = 300
        while true {
            let page = try await runtime.traces.searchTraces(search)
            seen += page.traces.map(\.traceId)
            guard let next = page.nextCursor else { break }
            search.cursor = next
        }
        #expect(seen.count == 999 && Set(seen).count == 999 && !seen.contains("t500"))
        await runtime.close()
    }
}
