import CustodyCore
import CustodyLog
import CustodyLogTesting
import CustodyServer
import CustodyServerTesting
import Foundation
import GRDB
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Testing

@Suite(.timeLimit(.minutes(1))) struct AdminRebuildTests {
    /// A damaged projection is repaired by an online rebuild while requests go on: the result
    /// equals a rebuild of the same log, row by row.
    @Test func onlineRebuildRepairsTheProjectionsWhileReadsAndWritesGoOn() async throws {
        try await ServerFixture.run(.router) { runtime, client in
            try await Self.seed(client)
            // Damage: rows lost from the live projections.
            var configuration = Configuration()
            configuration.busyMode = .timeout(10)
            let intruder = try DatabaseQueue(path: runtime.sqliteStore.path, configuration: configuration)
            try await intruder.write { db in
                try db.execute(sql: "DELETE FROM tasks WHERE uuid LIKE 't-1%'")
                try db.execute(sql: "DELETE FROM trace_summaries")
            }
            try intruder.close()
            #expect(try await client.call(.get, "/api/tasks/t-11").status == .notFound)
            // Writes and reads go on while it runs.
            guard let writes = try await Self.rebuildWhileWriting(client) else { return }
            let again = try await client.call(.get, "/api/tasks/t-11")
            #expect(again.status == .ok)
            // The live projections equal a rebuild of the same log. A request's own spans are
            // appended after its response (the last GET's response_sent), so the comparison is
            // of a log whose head did not move while both were read.
            let reference = ServerFixture.directory()
            try FileManager.default.createDirectory(atPath: reference, withIntermediateDirectories: true)
            defer { removeDataDirectory(reference) }
            let path = reference + "/reference.sqlite"
            var expected: [String: [[String]]] = [:]
            var live: [String: [[String]]] = [:]
            var stable = false
            for _ in 0..<10 where !stable {
                let head = await runtime.log.lastSeq
                try await runtime.projector.waitUntilApplied(head)
                for file in [path, path + "-wal", path + "-shm"] { try? FileManager.default.removeItem(atPath: file) }
                _ = try await ProjectionRebuild.rebuild(log: runtime.log, databasePath: path, snapshots: nil)
                let rebuilt = try SQLiteProjectionStore(path: path)
                expected = try await rebuilt.dump()
                try rebuilt.closeDatabase()
                live = try await runtime.sqliteStore.dump()
                stable = await runtime.log.lastSeq == head
            }
            #expect(stable, "the log kept growing while the projections were compared")
            for table in SQLiteProjectionStore.tables {
                #expect(live[table] == expected[table], "\(table) differs from a rebuild")
            }
            #expect((live["trace_summaries"]?.count ?? 0) >= 20 + writes)
        }
    }

    /// The same with the projections in PostgreSQL: the rebuild fills `custody_rebuild` and
    /// swaps it in by renaming, while reads and writes go on.
    @Test func onlineRebuildOnPostgreSQLSwapsSchemasWhileReadsAndWritesGoOn() async throws {
        let server = try await PostgreSQLServer()
        defer { server.stop() }
        let location = PostgreSQLLocation(host: "127.0.0.1", port: server.port, username: PostgreSQLServer.user, database: "postgres")
        try await PostgreSQLProjectionStore.withStore(at: location, logger: Logger(label: "test")) { store in
            try await ServerFixture.run(.router, projections: store) { runtime, client in
                try await Self.seed(client)
                // Damage, by an operator's psql.
                _ = try await server.psql("DELETE FROM custody.tasks WHERE uuid LIKE 't-1%'")
                #expect(try await client.call(.get, "/api/tasks/t-11").status == .notFound)
                guard let writes = try await Self.rebuildWhileWriting(client) else { return }
                #expect(try await client.call(.get, "/api/tasks/t-11").status == .ok)
                let schemas = try await server.psql("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'custody%' ORDER BY 1")
                #expect(schemas.split(separator: "\n") == ["custody"])
                // The projections answer as a rebuild of the same log into SQLite (compared
                // while the log's head stands still).
                let reference = ServerFixture.directory()
                try FileManager.default.createDirectory(atPath: reference, withIntermediateDirectories: true)
                defer { removeDataDirectory(reference) }
                var differences = ["not compared"]
                for attempt in 0..<10 where !differences.isEmpty {
                    let head = await runtime.log.lastSeq
                    try await runtime.projector.waitUntilApplied(head)
                    let path = reference + "/reference-\(attempt).sqlite"
                    _ = try await ProjectionRebuild.rebuild(log: runtime.log, databasePath: path, snapshots: nil)
                    let rebuilt = try SQLiteProjectionStore(path: path)
                    differences = try await ProjectionComparison.differences(rebuilt, store)
                    try await rebuilt.close()
                    if await runtime.log.lastSeq != head { differences = ["the log grew while comparing"] }
                }
                #expect(differences.isEmpty, "\(differences.prefix(3))")
                #expect(try await store.rowCount(of: "trace_summaries") >= 20 + writes)
            }
        }
    }

    /// Twenty tasks over three orders, and twenty two-span traces (one span an error).
    static func seed(_ client: some TestClientProtocol) async throws {
        for i in 0..<20 {
            _ = try await client.call(.post, "/api/tasks", json: #"{"order_id":"o-\#(i % 3)","payload":{"n":\#(i)},"uuid":"t-\#(i)"}"#)
            _ = try await client.call(
                .post,
                "/api/logs",
                json: #"[{"trace_id":"tr-\#(i)","source":"s"},{"trace_id":"tr-\#(i)","stage":"error"}]"#
            )
        }
    }

    /// Starts an online rebuild and writes and reads while it runs, until it is done: returns
    /// how many spans were written meanwhile, nil when the rebuild failed.
    static func rebuildWhileWriting(_ client: some TestClientProtocol) async throws -> Int? {
        #expect(try await client.call(.post, "/api/admin/rebuild").status == .accepted)
        var state = ""
        var writes = 0
        while state != "done" {
            _ = try await client.call(.post, "/api/logs", json: #"{"trace_id":"during-\#(writes)","source":"s"}"#)
            writes += 1
            #expect(try await client.call(.get, "/api/traces?limit=5").status == .ok)
            let stats = try await client.call(.get, "/api/admin/stats")
            state = (stats.data["rebuild"] as? [String: Any])?["state"] as? String ?? ""
            #expect(state == "building" || state == "done", "rebuild state \(state): \(stats.data["rebuild"] ?? "")")
            if state == "failed" { return nil }
        }
        return writes
    }

    @Test func aSecondRebuildWhileOneRunsIsAConflict() async throws {
        try await ServerFixture.run(.router) { _, client in
            _ = try await client.call(.post, "/api/logs", json: #"{"source":"s"}"#)
            let first = try await client.call(.post, "/api/admin/rebuild")
            let second = try await client.call(.post, "/api/admin/rebuild")
            #expect(first.status == .accepted)
            // Either the first is still building (409) or it already finished (202 again).
            #expect(second.status == .conflict || second.status == .accepted)
            if second.status == .conflict { #expect(second.errorCode == "conflict") }
        }
    }
}
