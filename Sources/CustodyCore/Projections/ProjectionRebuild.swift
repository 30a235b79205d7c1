import CustodyLog

/// Rebuilds projections from the log: into a fresh store (``ProjectionStore/makeRebuildTarget()``)
/// that is then swapped in atomically, so the projections are always either the old ones or the
/// complete new ones. The offline rebuild of a SQLite data directory is in
/// `SQLite/ProjectionRebuild+SQLite.swift`.
public enum ProjectionRebuild {
    public struct Report: Sendable, Hashable, Codable {
        public var events: UInt64
        public var seconds: Double
        public var eventsPerSecond: Double { seconds > 0 ? Double(events) / seconds : 0 }
    }

    /// Brings a rebuild target from empty up to the log's head now and ends its bulk load.
    /// Returns how many seqs it applied from the log. After retention (the log starts after seq
    /// 1), it starts from the state snapshot before the log's first seq (``StateSnapshots``).
    static func build(
        log: any EventLog,
        snapshots: StateSnapshots?,
        into target: any ProjectionStore,
        progress: (@Sendable (UInt64, UInt64) -> Void)?
    ) async throws -> UInt64 {
        let first = await log.firstSeq
        var start: UInt64 = 0
        if first > 1, let snapshots, let snapshot = try snapshots.snapshot(forLogStartingAt: first) {
            start = try await target.loadSnapshot(at: snapshot.path)
        }
        let projector = Projector(log: log, store: target, batchSize: 32_768)
        try await projector.catchUp(progress: progress)
        try await target.finishRebuild()
        return await projector.appliedSeq - start
    }

    /// Rebuilds the projections of a running server: builds a fresh store beside the live one
    /// while the projector goes on, then has the projector catch it up and swap its contents in
    /// (``Projector/adopt(rebuilt:)``). Reads keep working throughout.
    public static func rebuildOnline(
        projector: Projector,
        snapshots: StateSnapshots?,
        progress: (@Sendable (UInt64, UInt64) -> Void)? = nil
    ) async throws -> Report {
        let started = ContinuousClock.now
        let target = try await projector.store.makeRebuildTarget()
        let events: UInt64
        do {
            events = try await build(log: projector.log, snapshots: snapshots, into: target, progress: progress)
            try await projector.adopt(rebuilt: target)
        } catch {
            try? await target.close()
            throw error
        }
        return Report(events: events, seconds: (ContinuousClock.now - started).inSeconds)
    }
}
