import CustodyCore
import CustodyLog
import CustodyLogTesting
import Foundation
import GRDB
import NIOCore
import Testing

/// `custody rebuild` on a data directory: the projections file is replaced by one built from the
/// log, and nothing of the rebuild is left behind.
@Suite struct RebuildCommandTests {
    @Test func rebuildReplacesTheProjectionsFromTheLog() async throws {
        let executable = CustodyExecutable.path
        try #require(FileManager.default.isExecutableFile(atPath: executable))
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("custody-rebuild-\(UUID().uuidString)").path
        defer { removeDataDirectory(directory) }
        let log = try await SegmentLog.open(directory: directory)
        var generator = ScenarioGenerator(seed: 9)
        _ = try await log.append((0..<3000).map { _ in EventCodec.encode(generator.next()) })
        await log.close()
        // A stale projections file (from some other log) is replaced, not merged.
        let stale = try SQLiteProjectionStore(path: ProjectionPaths.database(in: directory))
        try await stale.apply([
            Event(seq: 99_999, ingestedAt: 0, body: .taskCreated(TaskCreated(uuid: "stale", orderId: "o", payload: JSONText("{}"))))
        ])
        try stale.closeDatabase()

        let (status, output) = try await ChildProcess.run(executable, ["rebuild", "--data-dir", directory, "--json"])
        #expect(status == 0)
        let report = try JSONDecoder().decode(JSONValue.self, from: Data(output.utf8)).objectValue
        #expect(report?["events"] == .integer(3000))

        let store = try SQLiteProjectionStore(path: ProjectionPaths.database(in: directory))
        #expect(try await store.appliedSeq() == 3000)
        let staleRows = try await store.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM tasks WHERE uuid = 'stale'") }
        #expect(staleRows == 0)
        let spans = try await store.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM operation_logs") }
        #expect((spans ?? 0) > 1000)
        try store.closeDatabase()
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.contains(".rebuild") }
        #expect(leftovers.isEmpty, "\(leftovers)")
    }
}
