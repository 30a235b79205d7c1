import CustodyCore
import CustodyLog
import CustodyLogTesting
import CustodySchema
import Foundation
import GRDB
import Testing

/// A database written before migration 004 (spans indexed by trace id in `operation_logs`)
/// opens with its traces numbered in order of first appearance, keyed, and listed in
/// `trace_spans`, and the projector goes on merging into its rows.
@Suite struct ProjectionMigrationTests {
    @Test func aVersion3DatabaseIsMigratedAndKeepsMerging() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("custody-migration-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { removeDataDirectory(directory) }
        let path = directory + "/projections.sqlite"

        // The schema as of migration 003, with two traces in it.
        let old = try DatabaseQueue(path: path)
        var migrator = DatabaseMigrator()
        let migrations = try CustodySchema.projectionMigrations()
        #expect(migrations.map(\.name).prefix(4) == ["001_projections", "002_trace_filters", "003_github_outbox", "004_trace_spans"])
        for migration in migrations.prefix(3) {
            let sql = migration.sql
            migrator.registerMigration(migration.name) { db in try db.execute(sql: sql) }
        }
        try migrator.migrate(old)
        try await old.write { db in
            for (seq, trace, source) in [(1, "second", "a"), (2, "first", "b"), (3, "second", "c"), (4, "first", "b")] {
                try db.execute(
                    sql: """
                        INSERT INTO operation_logs (seq, trace_id, source, stage, operation, timestamp, ingested_at, is_error)
                        VALUES (?, ?, ?, 'processing', 'op', ?, ?, 0)
                        """,
                    arguments: [seq, trace, source, 1000 + seq, 2000 + seq]
                )
            }
            try db.execute(
                sql: """
                    INSERT INTO trace_summaries (trace_id, root_operation, start, "end", span_count, error_count, sources, replay_of, last_seq)
                    VALUES ('first', 'op', 1002, 1004, 2, 0, '["b"]', NULL, 4), ('second', 'op', 1001, 1003, 2, 0, '["a","c"]', NULL, 3)
                    """
            )
            try db.execute(sql: "INSERT INTO projection_checkpoint (name, applied_seq, applied_at) VALUES ('projections', 4, 2004)")
        }
        try old.close()

        let store = try SQLiteProjectionStore(path: path)
        let numbered = try await store.read { db in
            try Row.fetchAll(db, sql: "SELECT id, trace_id, trace_key FROM trace_summaries ORDER BY id").map {
                ($0["id"] as Int64, $0["trace_id"] as String, $0["trace_key"] as Int64?)
            }
        }
        // Numbered by first seq: "second" has seq 1.
        #expect(numbered.map(\.0) == [1, 2])
        #expect(numbered.map(\.1) == ["second", "first"])
        #expect(numbered.allSatisfy { $0.2 != nil } && Set(numbered.map(\.2)).count == 2)
        #expect(try await store.traceSpanPairs() == ["first 2", "first 4", "second 1", "second 3"])
        let spanTraces = try await store.read { db in try String.fetchAll(db, sql: "SELECT seq || ':' || trace FROM operation_logs ORDER BY seq") }
        #expect(spanTraces == ["1:1", "2:2", "3:1", "4:2"])
        let values = try await store.read { db in
            try String.fetchAll(db, sql: "SELECT kind || ' ' || value || ' ' || first_seq || '-' || last_seq FROM value_batches ORDER BY 1")
        }
        #expect(values == ["operation op 1-4", "source a 1-1", "source b 2-4", "source c 3-3", "stage processing 1-4"])
        let indexes = try await store.read { db in
            try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'operation_logs' ORDER BY name")
        }
        #expect(indexes == ["operation_logs_by_task"])

        // A new span of "first" merges into its migrated row, found by its key.
        try await store.apply([
            Event(seq: 5, ingestedAt: 2005, body: .span(Span(traceId: "first", source: "d", operation: "early", timestamp: 900)))
        ])
        let first = try await store.read { db in
            try Row.fetchOne(db, sql: "SELECT id, span_count, sources, root_operation, start, last_seq FROM trace_summaries WHERE trace_id = 'first'")
                .map { $0.databaseValues.map(\.description) }
        }
        // id, span_count, sources, root_operation, start, last_seq
        #expect(first == ["2", "3", #""[\"b\",\"d\"]""#, #""early""#, "900", "5"])
        #expect(try await store.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM trace_summaries") } == 2)
        #expect(try await store.traceSpanPairs() == ["first 2", "first 4", "first 5", "second 1", "second 3"])
        try store.closeDatabase()
    }
}
