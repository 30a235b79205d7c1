import CustodyLog
import Foundation

/// Rebuilds the projections from the first seq of the log into a fresh database file, then swaps
/// it in atomically (rename), so the database is always either the old one or the complete new
/// one.
public enum ProjectionRebuild {
    public struct Report: Sendable, Hashable, Codable {
        public var events: UInt64
        public var seconds: Double
        public var eventsPerSecond: Double { seconds > 0 ? Double(events) / seconds : 0 }
    }

    /// Builds `databasePath` anew from `log`. Nothing else may have `databasePath` open (the
    /// offline rebuild of `custody rebuild`). `progress` gets (applied seq, head seq).
    public static func rebuild(
        log: SegmentLog,
        databasePath: String,
        progress: (@Sendable (UInt64, UInt64) -> Void)? = nil
    ) async throws -> Report {
        let files = FileManager.default
        let temporary = databasePath + ".rebuild"
        for leftover in [temporary, temporary + "-wal", temporary + "-shm"] where files.fileExists(atPath: leftover) {
            try files.removeItem(atPath: leftover)
        }
        let started = ContinuousClock.now
        let events = try await build(log: log, at: temporary, progress: progress)
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

    /// Builds a fresh projection database at `path` (which must not exist) from the first seq up
    /// to the log's head now: bulk loaded, summarized, checkpointed, closed and synchronized.
    /// Returns the seq it holds up to.
    static func build(log: SegmentLog, at path: String, progress: (@Sendable (UInt64, UInt64) -> Void)?) async throws -> UInt64 {
        let store = try ProjectionStore(path: path, durability: .deferred)
        let projector = Projector(log: log, store: store, batchSize: 32_768)
        do {
            try await store.beginBulkLoad()
            try await projector.catchUp(progress: progress)
            try await store.finishBulkLoad()
            // One self-contained file, synchronized, before it is used.
            try store.checkpointWAL()
            try store.close()
            try store.synchronizeFile()
        } catch {
            try? store.close()
            throw error
        }
        return await projector.appliedSeq
    }

    /// Rebuilds the projections of a running server: builds a fresh database beside the live
    /// one while the projector goes on, then has the projector catch it up and swap its contents
    /// in (``Projector/adopt(rebuiltAt:)``). Reads keep working throughout.
    public static func rebuildOnline(
        projector: Projector,
        progress: (@Sendable (UInt64, UInt64) -> Void)? = nil
    ) async throws -> Report {
        let started = ContinuousClock.now
        let files = FileManager.default
        let path = projector.store.path + ".online-rebuild"
        for leftover in [path, path + "-wal", path + "-shm"] where files.fileExists(atPath: leftover) {
            try files.removeItem(atPath: leftover)
        }
        defer {
            for leftover in [path, path + "-wal", path + "-shm"] { try? files.removeItem(atPath: leftover) }
        }
        let events = try await build(log: projector.log, at: path, progress: progress)
        try await projector.adopt(rebuiltAt: path)
        return Report(events: events, seconds: (ContinuousClock.now - started).inSeconds)
    }
}
