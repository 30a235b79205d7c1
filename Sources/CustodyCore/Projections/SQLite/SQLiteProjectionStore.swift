import CustodyLog
import CustodySchema
import Foundation
import GRDB
import GRDBSQLite
import NIOPosix
import Synchronization

/// ``ProjectionStore`` in one SQLite database (one file, WAL mode), the default store of a data
/// directory: tasks, followups,
/// operation_logs, error_events, delivery_reports, github_operations, replays,
/// trace_summaries, and the checkpoint of what has been applied; and tables that index them
/// (`trace_spans`, `trace_keys`, `value_batches`; see `schema/projections/004_trace_spans.sql`).
///
/// Rules:
/// - The schema is `schema/projections/*.sql`, run as named, append-only migrations.
/// - Rows are only written by ``apply(_:)``, which writes a batch of events and the checkpoint
///   (the last event's seq) in one transaction: after any crash the database holds exactly the
///   events up to its checkpoint, each applied once.
/// - Everything here can be deleted and rebuilt from the log.
/// - What it keeps in memory (``TraceSummaryCache``, ``RecentTraces``) mirrors committed rows
///   only: it changes after a transaction commits, never inside one that may roll back.
public final class SQLiteProjectionStore: ProjectionStore {
    /// The checkpoint row of the projections that this store holds.
    static let checkpointName = "projections"

    public let path: String
    public var engine: String { "sqlite" }
    /// A temporary database of ``makeRebuildTarget()``: removed when closed.
    let isRebuildTarget: Bool
    let pool: any DatabaseWriter
    /// The `trace_summaries` rows last committed, kept in memory for the next batches' merges.
    /// Only ``apply(_:checkpointSeq:checkpointTime:)`` and ``replaceContents(withDatabaseAt:)``
    /// change it, after their transaction, and they run one at a time (the projector calls them).
    let summaries = Mutex(TraceSummaryCache())
    /// The traces not yet in `trace_keys`, by id: changed, like `summaries`, only after a
    /// transaction of ``apply(_:checkpointSeq:checkpointTime:)`` or
    /// ``replaceContents(withDatabaseAt:)``, which run one at a time.
    let recent: Mutex<RecentTraces>
    /// How many traces are numbered between two writes of `trace_keys` (see ``RecentTraces``).
    public let keysWrittenPerMerge: Int
    /// The default ``keysWrittenPerMerge``: 131,072 traces (~13 MB in memory), a million events
    /// at 8 spans per trace; writing them sorted dirties each `trace_keys` page about once.
    public static let defaultKeysWrittenPerMerge = 131_072
    /// Whether `retired_traces` has a row: until retention deletes a trace's spans, a trace fetch
    /// need not look there. Set when the store opens and after what can fill the table (pruning,
    /// a snapshot loaded, contents replaced).
    let hasRetiredTraces = Atomic<Bool>(false)
    /// The custody graph's links of the traces applied last (``GraphProjection``): changed, like
    /// `summaries`, only after a transaction commits; emptied when the tables change otherwise.
    let links = Mutex(TraceLinksCache())
    /// Whether the projector keeps the custody graph (`graph_nodes`, `graph_edges`); off only to
    /// measure what keeping it costs (`custody bench ingest --no-graph`).
    public let keepsGraph: Bool
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
    public convenience init(
        path: String,
        durability: Durability = .synchronous,
        keysWrittenPerMerge: Int = SQLiteProjectionStore.defaultKeysWrittenPerMerge,
        keepsGraph: Bool = true
    ) throws {
        try self.init(
            path: path,
            durability: durability,
            keysWrittenPerMerge: keysWrittenPerMerge,
            isRebuildTarget: false,
            keepsGraph: keepsGraph
        )
    }

    init(
        path: String,
        durability: Durability,
        keysWrittenPerMerge: Int = SQLiteProjectionStore.defaultKeysWrittenPerMerge,
        isRebuildTarget: Bool,
        keepsGraph: Bool = true
    ) throws {
        self.path = path
        self.keepsGraph = keepsGraph
        self.isRebuildTarget = isRebuildTarget
        self.keysWrittenPerMerge = max(1, keysWrittenPerMerge)
        var configuration = Configuration()
        configuration.label = "custody.projections"
        // Another connection to the file (a reader's checkpoint, an operator's sqlite3) makes a
        // write wait a little rather than fail at once.
        configuration.busyMode = .timeout(5)
        configuration.prepareDatabase { db in
            db.add(function: TraceKey.function)
            // The writer: a page cache that holds the indexes being written (the default ~2 MB
            // makes every insert read and write pages through the kernel), and fewer, larger
            // checkpoints. Readers (up to five): a smaller cache each, so that queries cannot
            // take five times the writer's memory; the kernel's page cache holds the file.
            try db.execute(sql: db.configuration.readonly ? "PRAGMA cache_size = -16384" : "PRAGMA cache_size = -131072")
            try db.execute(sql: "PRAGMA wal_autocheckpoint = 10000")
            if durability == .deferred {
                try db.execute(sql: "PRAGMA synchronous = OFF")
                try db.execute(sql: "PRAGMA journal_mode = OFF")
                try db.execute(sql: "PRAGMA locking_mode = EXCLUSIVE")
            }
        }
        pool =
            durability == .deferred
            ? try DatabaseQueue(path: path, configuration: configuration) : try DatabasePool(path: path, configuration: configuration)
        var migrator = DatabaseMigrator()
        for migration in try CustodySchema.projectionMigrations() {
            let sql = migration.sql
            migrator.registerMigration(migration.name) { db in try db.execute(sql: sql) }
        }
        try migrator.migrate(pool)
        try pool.write(Self.backfillGraph)
        recent = Mutex(try pool.read(RecentTraces.load))
        hasRetiredTraces.store(try pool.read(Self.anyRetiredTraces), ordering: .releasing)
    }

    /// Bytes SQLite has allocated in this process (`sqlite3_memory_used`): the page caches of
    /// every connection (each up to the `cache_size` set above) and prepared statements.
    public static var memoryInUse: Int64 { sqlite3_memory_used() }

    /// The checkpoint of the database at `path` without opening it as a store (no migration, no
    /// memory loaded): 0 when there is no database or it has applied nothing.
    public static func appliedSeq(ofDatabaseAt path: String) throws -> UInt64 {
        guard FileManager.default.fileExists(atPath: path) else { return 0 }
        var configuration = Configuration()
        configuration.label = "custody.projections.checkpoint"
        configuration.busyMode = .timeout(5)
        let queue = try DatabaseQueue(path: path, configuration: configuration)
        defer { try? queue.close() }
        return try queue.read { db in
            guard try db.tableExists("projection_checkpoint") else { return 0 }
            let seq = try Int64.fetchOne(
                db,
                sql: "SELECT applied_seq FROM projection_checkpoint WHERE name = ?",
                arguments: [checkpointName]
            )
            return UInt64(seq ?? 0)
        }
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

    /// The losses the projections have applied a `log.loss` event for, as (first seq, last seq,
    /// segment, offset): what identifies a range of `quarantine.json`.
    public func recordedLosses() async throws -> Set<LossKey> {
        try await pool.read { db in
            let rows = try Row.fetchAll(db, sql: "SELECT first_seq, last_seq, segment, byte_offset FROM log_losses")
            return Set(
                rows.map { row in
                    LossKey(
                        firstSeq: UInt64(bitPattern: row[0]),
                        lastSeq: UInt64(bitPattern: row[1]),
                        segment: row[2],
                        offset: row[3]
                    )
                }
            )
        }
    }

    /// Applies `events` (in seq order, all after the checkpoint) and moves the checkpoint to the
    /// last one, in one transaction.
    public func apply(_ events: [Event]) async throws {
        guard let last = events.last else { return }
        try await apply(ProjectionBatch(events, checkpointSeq: last.seq, checkpointTime: last.ingestedAt))
    }

    public func apply(_ batch: ProjectionBatch) async throws {
        let events = batch.events
        let grouping = batch.grouping
        let checkpointSeq = batch.checkpointSeq
        let checkpointTime = batch.checkpointTime
        let changes = try await pool.write { db in
            let writer = ProjectionWriter(
                db,
                cachedSummary: { traceId in self.summaries.withLock { $0.entry(traceId) } },
                recentNumber: { traceId in self.recent.withLock { $0.number(of: traceId) } },
                cachedLinks: self.keepsGraph ? { traceId in self.links.withLock { $0.links(of: traceId) } } : nil
            )
            var changes = try writer.apply(events, grouping: grouping)
            let (count, throughId) = self.recent.withLock { ($0.count, $0.throughId) }
            if count + changes.numbered.count >= self.keysWrittenPerMerge {
                changes.keysIndexedThrough = try RecentTraces.writeKeys(db, after: throughId)
            }
            try db.execute(
                sql: """
                    INSERT INTO projection_checkpoint (name, applied_seq, applied_at) VALUES (?, ?, ?)
                    ON CONFLICT (name) DO UPDATE SET applied_seq = excluded.applied_seq, applied_at = excluded.applied_at
                    """,
                arguments: [Self.checkpointName, Int64(checkpointSeq), checkpointTime]
            )
            return changes
        }
        // Committed: the rows written are now the rows to merge into.
        summaries.withLock { cache in
            cache.remove(changes.stale)
            cache.record(changes.written)
        }
        if !changes.links.isEmpty { links.withLock { $0.record(changes.links) } }
        recent.withLock { recent in
            if let through = changes.keysIndexedThrough {
                recent.indexed(through: through)
            } else {
                for (traceId, id) in changes.numbered { recent.add(traceId, number: id) }
            }
        }
    }

    /// Replaces every projection table, the checkpoint included, with the contents of the
    /// database at `path` (a rebuild, closed and checkpointed), in one transaction: a reader sees
    /// the old rows or the new ones, never a mix, and keeps reading meanwhile (WAL). Returns the
    /// new checkpoint.
    func replaceContents(withDatabaseAt path: String) async throws -> UInt64 {
        summaries.withLock { $0.removeAll() }
        links.withLock { $0.removeAll() }
        defer {
            summaries.withLock { $0.removeAll() }
            links.withLock { $0.removeAll() }
        }
        let (seq, fresh) = try await pool.writeWithoutTransaction { db in
            try db.execute(sql: "ATTACH DATABASE ? AS fresh", arguments: [path])
            defer { try? db.execute(sql: "DETACH DATABASE fresh") }
            var fresh = RecentTraces()
            try db.inTransaction {
                for table in Self.tables + Self.indexTables + ["projection_checkpoint"] {
                    try db.execute(sql: "DELETE FROM main.\(table)")
                    try db.execute(sql: "INSERT INTO main.\(table) SELECT * FROM fresh.\(table)")
                }
                // Traces have the same numbers in both databases (by first appearance), but not
                // the same ones in trace_keys: until the commit is visible to every reader, the
                // recent traces of both are looked up in memory.
                fresh = try RecentTraces.load(db)
                self.recent.withLock { $0.add(fresh) }
                return .commit
            }
            let seq = try Int64.fetchOne(
                db,
                sql: "SELECT applied_seq FROM main.projection_checkpoint WHERE name = ?",
                arguments: [Self.checkpointName]
            )
            return (UInt64(seq ?? 0), fresh)
        }
        recent.withLock { $0 = fresh }
        try await noteRetiredTraces()
        return seq
    }

    /// Runs a read-only query on a snapshot of the database.
    public func read<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await pool.read(body)
    }

    /// A copy through SQLite's online backup API (GRDB's `backup(to:)`): one snapshot of the
    /// committed database, taken on a thread of its own while writes go on.
    public func backup(to path: String) async throws -> UInt64 {
        let pool = pool
        return try await NIOThreadPool.singleton.runIfActive {
            let destination = try DatabaseQueue(path: path)
            try pool.backup(to: destination)
            try destination.close()
            return try SQLiteProjectionStore.appliedSeq(ofDatabaseAt: path)
        }
    }

    /// Every row of every projection table (checkpoint excluded), as text, ordered by primary key:
    /// for comparing two databases row by row.
    public func dump() async throws -> [String: [[String]]] {
        try await pool.read { db in
            var tables: [String: [[String]]] = [:]
            for table in SQLiteProjectionStore.tables {
                let rows = try Row.fetchAll(db, sql: "SELECT * FROM \(table) ORDER BY 1, 2")
                tables[table] = rows.map { row in row.databaseValues.map(\.description) }
            }
            return tables
        }
    }

    public static let tables = [
        "tasks", "followups", "operation_logs", "error_events", "delivery_reports", "github_operations", "replays", "trace_summaries",
        "log_losses", "log_checkpoints", "log_retentions", "retired_traces", "graph_nodes", "graph_edges",
    ]

    /// Tables that index the projections rather than project events: their rows depend on how
    /// the events were batched (`trace_spans` has one row per trace per batch), so two databases
    /// with the same projections may differ here row by row, never in what the rows say.
    public static let indexTables = ["trace_spans", "trace_keys", "trace_keys_indexed", "value_batches"]

    /// The number (`trace_summaries.id`) of a trace, nil when it has no row: from memory for a
    /// recent trace, else through `trace_keys`.
    public func traceNumber(_ traceId: String) async throws -> Int64? {
        if let number = recentTraceNumber(traceId) { return number }
        return try await pool.read { db in
            try Int64.fetchOne(
                db,
                sql: "SELECT s.id " + RecentTraces.byKey,
                arguments: [TraceKey.of(traceId), traceId]
            )
        }
    }

    /// The number (`trace_summaries.id`) of a trace numbered since `trace_keys` was last
    /// written; nil for the others, which `trace_keys` finds. Look here before taking the
    /// snapshot that reads the row (see ``RecentTraces``).
    func recentTraceNumber(_ traceId: String) -> Int64? {
        recent.withLock { $0.number(of: traceId) }
    }

    /// Every (trace id, seq) that `trace_spans` lists, sorted: what it says, whatever the batches.
    public func traceSpanPairs() async throws -> [String] {
        try await pool.read { db in
            try String.fetchAll(
                db,
                sql: """
                    SELECT t.trace_id || ' ' || j.value FROM trace_spans s JOIN trace_summaries t ON t.id = s.trace, json_each(s.seqs) j
                    ORDER BY t.trace_id, j.value
                    """
            )
        }
    }

    // MARK: Bulk load (rebuild)

    /// Prepares an empty database for loading many events: drops the secondary indexes (rows go
    /// in faster without them; ``finishBulkLoad()`` creates them again, sorted, in one pass each).
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

    /// Ends a bulk load: creates the dropped indexes again.
    public func finishBulkLoad() async throws {
        let indexes = droppedIndexes.withLock { $0 }
        try await pool.write { db in
            for sql in indexes { try db.execute(sql: sql) }
        }
    }

    /// Moves everything from the write-ahead log into the database file, leaving one file.
    public func checkpointWAL() throws {
        guard pool is DatabasePool else { return }
        try pool.writeWithoutTransaction { db in _ = try db.checkpoint(.truncate) }
    }

    /// Closes the database (without checkpointing its WAL: ``close()`` does both).
    public func closeDatabase() throws {
        try pool.close()
    }

    public func close() async throws {
        try checkpointWAL()
        try closeDatabase()
        if isRebuildTarget { Self.removeFiles(at: path) }
    }

    // MARK: Rebuild

    public func makeRebuildTarget() async throws -> any ProjectionStore {
        let target = path + ".online-rebuild"
        Self.removeFiles(at: target)
        let store = try SQLiteProjectionStore(path: target, durability: .deferred, isRebuildTarget: true)
        try await store.beginBulkLoad()
        return store
    }

    public func finishRebuild() async throws {
        try await finishBulkLoad()
        try checkpointWAL()
    }

    public func replaceContents(with rebuilt: any ProjectionStore) async throws -> UInt64 {
        guard let rebuilt = rebuilt as? SQLiteProjectionStore else {
            throw CoreError(.internalError, "a SQLite store can only take the contents of another SQLite store")
        }
        try rebuilt.checkpointWAL()
        try rebuilt.closeDatabase()
        defer { Self.removeFiles(at: rebuilt.path) }
        return try await replaceContents(withDatabaseAt: rebuilt.path)
    }

    /// Removes a database file and its WAL and shared-memory files.
    static func removeFiles(at path: String) {
        for file in [path, path + "-wal", path + "-shm"] { try? FileManager.default.removeItem(atPath: file) }
    }

    /// fsyncs the database file (after ``checkpointWAL()``), for ``Durability/deferred``.
    public func synchronizeFile() throws {
        let file = try PosixFileSystem().openFile(at: path, mode: .readWrite)
        defer { try? file.close() }
        try file.synchronize()
    }
}
