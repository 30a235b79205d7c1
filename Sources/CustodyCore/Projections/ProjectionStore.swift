import CustodyLog
import CustodySchema
import GRDB

/// The SQLite database of the projections (one file, WAL mode): tasks, followups,
/// operation_logs, error_events, delivery_reports, github_operations, replays,
/// trace_summaries, and the checkpoint of what has been applied.
///
/// Rules:
/// - The schema is `schema/projections/*.sql`, run as named, append-only migrations.
/// - Rows are only written by ``apply(_:)``, which writes a batch of events and the checkpoint
///   (the last event's seq) in one transaction: after any crash the database holds exactly the
///   events up to its checkpoint, each applied once.
/// - Everything here can be deleted and rebuilt from the log.
public final class ProjectionStore: Sendable {
    /// The checkpoint row of the projections that this store holds.
    static let checkpointName = "projections"

    public let path: String
    let pool: DatabasePool

    /// How the database is written.
    public enum Durability: Sendable {
        /// Every transaction is durable before it returns (the live projections).
        case synchronous
        /// No fsync per transaction: for a file that is thrown away if the process dies (a
        /// rebuild), made durable as a whole with ``synchronizeFile()`` before it is used.
        case deferred
    }

    /// Opens (creating when missing) the database at `path` and brings its schema up to date.
    public init(path: String, durability: Durability = .synchronous) throws {
        self.path = path
        var configuration = Configuration()
        configuration.label = "custody.projections"
        configuration.prepareDatabase { db in
            // A page cache that holds the indexes being written (the default ~2 MB makes every
            // insert read and write pages through the kernel), and fewer, larger checkpoints.
            try db.execute(sql: "PRAGMA cache_size = -131072")
            try db.execute(sql: "PRAGMA wal_autocheckpoint = 10000")
            if durability == .deferred { try db.execute(sql: "PRAGMA synchronous = OFF") }
        }
        pool = try DatabasePool(path: path, configuration: configuration)
        var migrator = DatabaseMigrator()
        for migration in try CustodySchema.projectionMigrations() {
            let sql = migration.sql
            migrator.registerMigration(migration.name) { db in try db.execute(sql: sql) }
        }
        try migrator.migrate(pool)
    }

    /// The checkpoint: the seq of the last applied event (0 when none).
    public func appliedSeq() async throws -> UInt64 {
        try await pool.read { db in
            let seq = try Int64.fetchOne(
                db,
                sql: "SELECT applied_seq FROM projection_checkpoint WHERE name = ?",
                arguments: [Self.checkpointName]
            )
            return UInt64(seq ?? 0)
        }
    }

    /// Applies `events` (in seq order, all after the checkpoint) and moves the checkpoint to the
    /// last one, in one transaction.
    public func apply(_ events: [Event]) async throws {
        guard let last = events.last else { return }
        try await apply(events, checkpointSeq: last.seq, checkpointTime: last.ingestedAt)
    }

    /// Applies `events` and moves the checkpoint to `checkpointSeq` (which may be past the last
    /// event, over records that were not events), in one transaction.
    func apply(_ events: [Event], checkpointSeq: UInt64, checkpointTime: Int64) async throws {
        try await pool.write { db in
            try ProjectionWriter(db).apply(events)
            try db.execute(
                sql: """
                    INSERT INTO projection_checkpoint (name, applied_seq, applied_at) VALUES (?, ?, ?)
                    ON CONFLICT (name) DO UPDATE SET applied_seq = excluded.applied_seq, applied_at = excluded.applied_at
                    """,
                arguments: [Self.checkpointName, Int64(checkpointSeq), checkpointTime]
            )
        }
    }

    /// Runs a read-only query on a snapshot of the database.
    public func read<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await pool.read(body)
    }

    /// Every row of every projection table (checkpoint excluded), as text, ordered by primary key:
    /// for comparing two databases row by row.
    public func dump() async throws -> [String: [[String]]] {
        try await pool.read { db in
            var tables: [String: [[String]]] = [:]
            for table in ProjectionStore.tables {
                let rows = try Row.fetchAll(db, sql: "SELECT * FROM \(table) ORDER BY 1, 2")
                tables[table] = rows.map { row in row.databaseValues.map(\.description) }
            }
            return tables
        }
    }

    public static let tables = [
        "tasks", "followups", "operation_logs", "error_events", "delivery_reports", "github_operations", "replays", "trace_summaries",
    ]

    /// Moves everything from the write-ahead log into the database file, leaving one file.
    public func checkpointWAL() throws {
        try pool.writeWithoutTransaction { db in _ = try db.checkpoint(.truncate) }
    }

    public func close() throws {
        try pool.close()
    }

    /// fsyncs the database file (after ``checkpointWAL()``), for ``Durability/deferred``.
    public func synchronizeFile() throws {
        let file = try PosixFileSystem().openFile(at: path, mode: .readWrite)
        defer { try? file.close() }
        try file.synchronize()
    }
}
