import CustodyLog
import CustodySchema
import Foundation
import Logging
import NIOCore
import PostgresNIO

/// The one connection through which a node writes a PostgreSQL projection schema: it holds the
/// schema's advisory lock while this node is the writer, and runs every write transaction, one
/// at a time.
///
/// Rules:
/// - A lost connection is opened again on the next call; the lock went with it, so it is taken
///   again (or not) before the next batch.
/// - ``TraceSummaryCache`` and ``TraceLinksCache`` mirror the rows this connection committed.
///   They are emptied whenever the lock is (re)taken or the contents are replaced: another writer
///   may have changed the rows.
actor PostgreSQLWriter {
    let configuration: PostgresConnection.Configuration
    let schema: String
    /// The advisory lock's key; nil for a rebuild target, which only this node writes.
    let lockKey: String?
    let logger: Logger
    private var connection: PostgresConnection?
    private var holdsLock = false
    private var summaries = TraceSummaryCache()
    private var links = TraceLinksCache()
    private var connections = 0

    init(configuration: PostgresConnection.Configuration, schema: String, lockKey: String?, logger: Logger) {
        self.configuration = configuration
        self.schema = schema
        self.lockKey = lockKey
        self.logger = logger
    }

    /// The open connection, opened again if it was lost.
    func connected() async throws -> PostgresConnection {
        if let connection, !connection.isClosed { return connection }
        holdsLock = false
        forgetCommittedRows()
        connection = nil
        connections += 1
        do {
            let opened = try await PostgresConnection.connect(configuration: configuration, id: connections, logger: logger)
            connection = opened
            return opened
        } catch {
            throw CoreError(.storageUnavailable, "cannot reach the projections' PostgreSQL server: \(String(reflecting: error))", cause: error)
        }
    }

    /// How long one call on the connection (a batch's transaction, say) may take before the
    /// connection is closed as dead (``PostgresConnection/withDeadline(_:_:)``).
    static let deadline: Duration = .seconds(60)

    /// Runs `body` on the connection, for at most ``deadline``. A failure that is not an answer
    /// of the server (``PostgresConnection/isAnswer(_:)``) closes the connection and drops it, the
    /// lock with it: nothing more is written on a connection that may be dying.
    private func using<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        let connection = try await connected()
        do {
            return try await connection.withDeadline(Self.deadline, body)
        } catch {
            if connection.isClosed || !PostgresConnection.isAnswer(error) {
                try? await connection.close()
                self.connection = nil
                holdsLock = false
                forgetCommittedRows()
            }
            throw error
        }
    }

    func execute(_ sql: String) async throws {
        let logger = logger
        try await using { connection in
            _ = try await connection.queryIfOpen(PostgresQuery(unsafeSQL: sql), logger: logger)
        }
    }

    /// Whether this node may write now: true while it holds the lock, which it tries to take
    /// when free.
    func mayApply() async throws -> Bool {
        guard let lockKey else { return true }
        let connection = try await connected()
        if holdsLock { return true }
        let logger = logger
        let taken = try await using { connection in
            try await connection.queryIfOpen("SELECT pg_try_advisory_lock(hashtext(\(lockKey)))", logger: logger).collect().first?
                .decode(Bool.self) ?? false
        }
        if taken, self.connection === connection {
            holdsLock = true
            forgetCommittedRows()
            logger.notice("this node now applies events to the projections in PostgreSQL", metadata: ["schema": "\(schema)"])
        }
        return holdsLock
    }

    func appliedSeq() async throws -> UInt64 {
        let logger = logger
        return try await using { connection in
            let seq = try await connection.queryIfOpen(
                "SELECT applied_seq FROM projection_checkpoint WHERE name = \(SQLiteProjectionStore.checkpointName)",
                logger: logger
            ).collect().first?.decode(Int64.self)
            return UInt64(seq ?? 0)
        }
    }

    /// Creates the schema (when `create`) and runs the migrations not yet run, one transaction
    /// each, under a transaction-level advisory lock so that two nodes starting together do not
    /// run them twice.
    func migrate(create: Bool) async throws {
        let migrations = try CustodySchema.projectionMigrations(.postgresql)
        let schema = schema
        let logger = logger
        try await using { connection in
            try await connection.inTransaction(logger: logger) { connection in
                _ = try await connection.queryIfOpen("SELECT pg_advisory_xact_lock(hashtext(\("custody-migrations:" + schema)))", logger: logger)
                if create { _ = try await connection.queryIfOpen(PostgresQuery(unsafeSQL: "CREATE SCHEMA IF NOT EXISTS \(schema)"), logger: logger) }
                _ = try await connection.queryIfOpen(
                    "CREATE TABLE IF NOT EXISTS schema_migrations (name text COLLATE \"C\" PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())",
                    logger: logger
                )
                let done = Set(
                    try await connection.queryIfOpen("SELECT name FROM schema_migrations", logger: logger).collect().map {
                        try $0.decode(String.self)
                    }
                )
                for migration in migrations where !done.contains(migration.name) {
                    for statement in Self.statements(of: migration.sql) {
                        _ = try await connection.queryIfOpen(PostgresQuery(unsafeSQL: statement), logger: logger)
                    }
                    _ = try await connection.queryIfOpen("INSERT INTO schema_migrations (name) VALUES (\(migration.name))", logger: logger)
                }
                try await PostgreSQLBatchWriter.backfillGraph(connection, logger: logger)
                _ = try await connection.queryIfOpen(
                    "INSERT INTO projection_checkpoint (name, applied_seq, applied_at) VALUES (\(SQLiteProjectionStore.checkpointName), 0, 0) ON CONFLICT DO NOTHING",
                    logger: logger
                )
            }
        }
    }

    /// The statements of a migration file: its text without `--` comments, split at `;`. (The
    /// files hold DDL only: no `;` or `--` inside a literal.)
    static func statements(of sql: String) -> [String] {
        let lines = sql.split(separator: "\n", omittingEmptySubsequences: false).map { line in
            line.range(of: "--").map { String(line[..<$0.lowerBound]) } ?? String(line)
        }
        return lines.joined(separator: "\n").split(separator: ";").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
            .filter { !$0.isEmpty }
    }

    /// Applies a batch and moves the checkpoint, in one transaction guarded against a second
    /// writer (``PostgreSQLProjectionStore``'s rules).
    func apply(_ batch: ProjectionBatch) async throws {
        guard try await mayApply() else {
            throw CoreError(.conflict, "another node applies events to the projections in PostgreSQL (schema \(schema))")
        }
        let (cache, links) = (summaries, self.links)
        let logger = logger
        let changes = try await using { connection in
            try await connection.inTransaction(logger: logger) { connection in
                try await PostgreSQLBatchWriter(connection: connection, logger: logger, cache: cache, links: links).apply(batch)
            }
        }
        summaries.remove(changes.stale)
        summaries.record(changes.written)
        self.links.record(changes.links)
    }

    /// Empties what mirrors committed rows (see the rules above).
    private func forgetCommittedRows() {
        summaries.removeAll()
        links.removeAll()
    }

    /// Drops this writer's schema (a rebuild target's) with everything in it.
    func dropSchema() async throws {
        try await execute("DROP SCHEMA IF EXISTS \(schema) CASCADE")
    }

    /// Puts the schema `rebuilt` in the place of this one by two renames in one transaction,
    /// then drops the old one. Only the writer swaps: another writer's transactions would go on
    /// into whichever schema the name then means.
    func swapSchema(with rebuilt: String) async throws -> UInt64 {
        guard try await mayApply() else {
            throw CoreError(
                .conflict,
                "the projections in PostgreSQL are written by another node: run the rebuild there (the node whose /api/admin/stats says it applies events)"
            )
        }
        let old = schema + "_old"
        try await execute("DROP SCHEMA IF EXISTS \(old) CASCADE")
        forgetCommittedRows()
        let (schema, logger) = (schema, logger)
        try await using { connection in
            try await connection.inTransaction(logger: logger) { connection in
                _ = try await connection.queryIfOpen(PostgresQuery(unsafeSQL: "ALTER SCHEMA \(schema) RENAME TO \(old)"), logger: logger)
                _ = try await connection.queryIfOpen(PostgresQuery(unsafeSQL: "ALTER SCHEMA \(rebuilt) RENAME TO \(schema)"), logger: logger)
            }
        }
        try await execute("DROP SCHEMA IF EXISTS \(old) CASCADE")
        return try await appliedSeq()
    }

    /// Runs `body` in a transaction on the writer connection (retention's pruning, a snapshot's
    /// load), emptying the summary cache: it changes rows the cache mirrors.
    func transaction<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        forgetCommittedRows()
        let logger = logger
        return try await using { connection in
            try await connection.inTransaction(logger: logger) { connection in try await body(connection) }
        }
    }

    func close() async {
        if let connection { try? await connection.close() }
        connection = nil
        holdsLock = false
    }
}
