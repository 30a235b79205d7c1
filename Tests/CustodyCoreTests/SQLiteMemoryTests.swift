import CustodyLogTesting
import Foundation
import GRDB
import Testing

@testable import CustodyCore

@Suite struct SQLiteMemoryTests {
    /// The writer's page cache holds the indexes being written; each reader's is an eighth of it,
    /// so five readers' queries cannot take five times the writer's memory.
    @Test func readersHaveASmallerPageCacheThanTheWriter() async throws {
        let directory = ProjectionTests.temporaryDirectory()
        defer { removeDataDirectory(directory) }
        let store = try SQLiteProjectionStore(path: directory + "/p.sqlite")
        let writer = try await store.pool.write { db in try Int.fetchOne(db, sql: "PRAGMA cache_size") }
        let reader = try await store.pool.read { db in try Int.fetchOne(db, sql: "PRAGMA cache_size") }
        #expect(writer == -131_072)
        #expect(reader == -16_384)
        #expect(SQLiteProjectionStore.memoryInUse > 0)
    }
}
