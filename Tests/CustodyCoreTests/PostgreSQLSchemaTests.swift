import CustodyCore
import CustodyLogTesting
import CustodySchema
import Foundation
import GRDB
import Testing

/// The PostgreSQL variant of the projection schema (`schema/projections-postgresql/`, for the
/// projections on PostgreSQL of docs/projections.md) on a real, throwaway PostgreSQL: it runs as
/// the same named migrations, and gives every table the SQLite projections have — apart from the
/// SQLite-only indexes — with the same columns, ordering text bytewise as SQLite does.
@Suite struct PostgreSQLSchemaTests {
    /// SQLite's own index tables, which PostgreSQL replaces with plain indexes.
    static let sqliteOnly: Set<String> = ["trace_keys", "trace_keys_indexed", "value_batches"]

    @Test func theMigrationsGiveTheSQLiteTablesAndColumns() async throws {
        let sqlite = try CustodySchema.projectionMigrations(.sqlite)
        let postgresql = try CustodySchema.projectionMigrations(.postgresql)
        #expect(postgresql.map(\.name) == sqlite.map(\.name))

        let server = try await PostgreSQLServer()
        defer { server.stop() }
        _ = try await server.psql("CREATE DATABASE custody_schema")
        for migration in postgresql {
            _ = try await server.psql("BEGIN;\n\(migration.sql)\nCOMMIT;", database: "custody_schema")
        }
        var postgresColumns: [String: Set<String>] = [:]
        let listed = try await server.psql(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public'",
            database: "custody_schema"
        )
        for line in listed.split(separator: "\n") {
            let parts = line.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
            guard parts.count == 2 else { continue }
            postgresColumns[parts[0], default: []].insert(parts[1])
        }

        let directory = TemporaryDirectory("schema")
        defer { directory.remove() }
        let store = try SQLiteProjectionStore(path: directory.file("projections.sqlite"))
        let sqliteColumns = try await store.read { db -> [String: Set<String>] in
            var columns: [String: Set<String>] = [:]
            for table in try String.fetchAll(
                db,
                sql: "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name != 'grdb_migrations'"
            ) {
                columns[table] = Set(try Row.fetchAll(db, sql: "PRAGMA table_info(\(table))").map { $0["name"] as String })
            }
            return columns
        }
        try await store.close()
        #expect(Set(sqliteColumns.keys).subtracting(Self.sqliteOnly) == Set(postgresColumns.keys))
        for (table, columns) in sqliteColumns where !Self.sqliteOnly.contains(table) {
            #expect(postgresColumns[table] == columns, "\(table): PostgreSQL has \(postgresColumns[table] ?? []), SQLite \(columns)")
        }

        // Text orders bytewise, as in SQLite ('B' before 'a'), whatever the database's locale.
        let ordered = try await server.psql(
            """
            INSERT INTO trace_summaries (trace_id, root_operation, start, "end", span_count, error_count, sources, last_seq)
            VALUES ('a', 'op', 1, 2, 1, 0, '[]', 1), ('B', 'op', 1, 2, 1, 0, '[]', 2), ('é', 'op', 1, 2, 1, 0, '[]', 3);
            SELECT trace_id FROM trace_summaries ORDER BY trace_id;
            """,
            database: "custody_schema"
        )
        #expect(ordered.split(separator: "\n") == ["B", "a", "é"])
        // Traces are numbered as they are added.
        let numbers = try await server.psql("SELECT id FROM trace_summaries ORDER BY last_seq", database: "custody_schema")
        #expect(numbers.split(separator: "\n") == ["1", "2", "3"])
    }
}
