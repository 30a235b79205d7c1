import CustodyLog
import CustodySchema
import GRDB
import Synchronization

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
    /// Whether ``apply(_:)`` keeps `trace_summaries` up to date (off during a bulk load).
    let summarizesTraces: Bool
    /// The secondary indexes dropped by ``beginBulkLoad()``, to create again.
    private let droppedIndexes = Mutex<[String]>([])

    /// How the database is written.
    public enum Durability: Sendable {
        /// Every transaction is durable before it returns (the live projections).
        case synchronous
        /// No fsync per transaction: for a file that is thrown away if the process dies (a
        /// rebuild), made durable as a whole with ``synchronizeFile()`` before it is used.
        case deferred
    }

    /// Opens (creating when missing) the database at `path` and brings its schema up to date.
    public init(path: String, durability: Durability = .synchronous, summarizesTraces: Bool = true) throws {
        self.path = path
        self.summarizesTraces = summarizesTraces
        var configuration = Configuration()
        configuration.label = "custody.projections"
        // Another connection to the file (a reader's checkpoint, an operator's sqlite3) makes a
        // write wait a little rather than fail at once.
        configuration.busyMode = .timeout(5)
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
            try ProjectionWriter(db, summarizesTraces: self.summarizesTraces).apply(events)
            try db.execute(
                sql: """
                    INSERT INTO projection_checkpoint (name, applied_seq, applied_at) VALUES (?, ?, ?)
                    ON CONFLICT (name) DO UPDATE SET applied_seq = excluded.applied_seq, applied_at = excluded.applied_at
                    """,
                arguments: [Self.checkpointName, Int64(checkpointSeq), checkpointTime]
            )
        }
    }

    /// Replaces every projection table, the checkpoint included, with the contents of the
    /// database at `path` (a rebuild, closed and checkpointed), in one transaction: a reader sees
    /// the old rows or the new ones, never a mix, and keeps reading meanwhile (WAL). Returns the
    /// new checkpoint.
    func replaceContents(withDatabaseAt path: String) async throws -> UInt64 {
        try await pool.writeWithoutTransaction { db in
            try db.execute(sql: "ATTACH DATABASE ? AS fresh", arguments: [path])
            defer { try? db.execute(sql: "DETACH DATABASE fresh") }
            try db.inTransaction {
                for table in Self.tables + ["projection_checkpoint"] {
                    try db.execute(sql: "DELETE FROM main.\(table)")
                    try db.execute(sql: "INSERT INTO main.\(table) SELECT * FROM fresh.\(table)")
                }
                return .commit
            }
            let seq = try Int64.fetchOne(
                db,
                sql: "SELECT applied_seq FROM main.projection_checkpoint WHERE name = ?",
                arguments: [Self.checkpointName]
            )
            return UInt64(seq ?? 0)
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

    // MARK: Bulk load (rebuild)

    /// Prepares an empty database for loading many events: drops the secondary indexes (rows go
    /// in faster without them; ``finishBulkLoad()`` creates them again, sorted, in one pass each).
    /// Open the store with `summarizesTraces: false` for a bulk load.
    public func beginBulkLoad() async throws {
        let indexes = try await pool.write { db -> [(String, String)] in
            let indexes = try Row.fetchAll(
                db,
                sql: "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL ORDER BY name"
            ).map { (row: Row) in (row["name"] as String, row["sql"] as String) }
            for (name, _) in indexes { try db.execute(sql: "DROP INDEX \(name)") }
            return indexes
        }
        droppedIndexes.withLock { $0 = indexes.map(\.1) }
    }

    /// Ends a bulk load: creates the dropped indexes again and computes every trace summary from
    /// `operation_logs` in one statement — the same rows the live, per-span updates produce (the
    /// earliest span's operation, ties to the lower seq; sources in order of first appearance).
    public func finishBulkLoad() async throws {
        let indexes = droppedIndexes.withLock { $0 }
        try await pool.write { db in
            for sql in indexes { try db.execute(sql: sql) }
            try db.execute(sql: "DELETE FROM trace_summaries")
            try db.execute(
                sql: """
                    INSERT INTO trace_summaries (trace_id, root_operation, start, "end", span_count, error_count, sources, replay_of, last_seq)
                    SELECT o.trace_id,
                        (SELECT r.operation FROM operation_logs r WHERE r.trace_id = o.trace_id ORDER BY r.timestamp, r.seq LIMIT 1),
                        MIN(o.timestamp),
                        MAX(o.timestamp + CAST(COALESCE(o.duration_ms, 0) * 1000000 AS INTEGER)),
                        COUNT(*),
                        SUM(o.is_error),
                        (SELECT json_group_array(source) FROM (
                            SELECT s.source, MIN(s.seq) AS first FROM operation_logs s WHERE s.trace_id = o.trace_id
                            GROUP BY s.source ORDER BY first)),
                        (SELECT from_trace FROM replays WHERE new_trace = o.trace_id),
                        MAX(o.seq)
                    FROM operation_logs o
                    GROUP BY o.trace_id
                    """
            )
        }
    }

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
