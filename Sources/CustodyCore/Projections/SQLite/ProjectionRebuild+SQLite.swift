import CustodyLog
import Foundation

extension ProjectionRebuild {
    /// Builds the SQLite projections at `databasePath` anew from `log`, into a file beside it that
    /// then replaces it (rename). Nothing else may have `databasePath` open (the offline rebuild
    /// of `custody rebuild`, and of a repaired log before it is served). `progress` gets
    /// (applied seq, head seq).
    public static func rebuild(
        log: any EventLog,
        databasePath: String,
        snapshots: StateSnapshots?,
        progress: (@Sendable (UInt64, UInt64) -> Void)? = nil
    ) async throws -> Report {
        let files = FileManager.default
        let temporary = databasePath + ".rebuild"
        SQLiteProjectionStore.removeFiles(at: temporary)
        let started = ContinuousClock.now
        let store = try SQLiteProjectionStore(path: temporary, durability: .deferred)
        let events: UInt64
        do {
            try await store.beginBulkLoad()
            events = try await build(log: log, snapshots: snapshots, into: store, progress: progress)
            // One self-contained file, synchronized, before it is used.
            try await store.close()
            try store.synchronizeFile()
        } catch {
            try? store.closeDatabase()
            throw error
        }
        // The WAL was checkpointed into the file and truncated: its leftovers hold nothing.
        for leftover in [temporary + "-wal", temporary + "-shm"] where files.fileExists(atPath: leftover) {
            try files.removeItem(atPath: leftover)
        }
        // The old file's WAL and shared memory belong to the old file: remove them first. If the
        // process dies between here and the rename, the old file is still whole as of its last
        // checkpoint (SQLite keeps a database without its WAL consistent), just older.
        for stale in [databasePath + "-wal", databasePath + "-shm"] where files.fileExists(atPath: stale) {
            try files.removeItem(atPath: stale)
        }
        try PosixFileSystem().rename(from: temporary, to: databasePath)
        try PosixFileSystem().synchronizeDirectory(at: URL(fileURLWithPath: databasePath).deletingLastPathComponent().path)
        let elapsed = ContinuousClock.now - started
        return Report(events: events, seconds: elapsed.inSeconds)
    }
}
