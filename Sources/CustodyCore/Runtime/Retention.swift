import CustodyLog
import Logging
import Synchronization

/// Retention of one runtime (docs/operations.md, "Retention"): its policy, its state snapshots,
/// and what its last pass did.
public final class Retention: Sendable {
    public let policy: RetentionPolicy
    public let snapshots: StateSnapshots
    /// The other nodes reading the log, whose snapshots a deletion waits for.
    public let peers: any LogPeers
    private let last = Mutex<RetentionPass?>(nil)
    /// The last seq of the newest deletion this node has followed (its snapshot built, its span
    /// projections pruned) since it started.
    private let followed = Mutex<UInt64>(0)

    public init(policy: RetentionPolicy, snapshots: StateSnapshots, peers: any LogPeers = NoLogPeers()) {
        self.policy = policy
        self.snapshots = snapshots
        self.peers = peers
    }

    /// The seq the newest state snapshot of this node is as of (0: none): what it tells the
    /// other nodes (``LogPeers``).
    public var snapshotSeq: UInt64 { snapshots.all().last?.seq ?? 0 }

    /// The last seq of the newest deletion this node has followed since it started (0: none).
    public var followedThrough: UInt64 {
        get { followed.withLock { $0 } }
        set { followed.withLock { $0 = max($0, newValue) } }
    }

    /// The last pass that ran, nil before the first.
    public var lastPass: RetentionPass? { last.withLock { $0 } }

    func record(_ pass: RetentionPass) { last.withLock { $0 = pass } }
}

/// What one retention pass did.
public struct RetentionPass: Sendable, Hashable {
    /// When it ran (nanoseconds since the Unix epoch) and how long it took.
    public var at: Int64
    public var seconds: Double = 0
    /// The seqs it deleted (nil: nothing was due), and how much.
    public var deleted: ClosedRange<UInt64>?
    public var segments = 0
    public var bytes: Int64 = 0
    /// Span projections removed.
    public var pruning = SpanPruning()
    /// The snapshot it took.
    public var snapshot: String?
    /// Why nothing was deleted although the policy asked for it (the projections behind).
    public var held: String?

    public var jsonValue: JSONValue {
        .object([
            "at": .string(RFC3339.format(at)), "seconds": .number(seconds),
            "first_seq": deleted.map { .integer(Int64($0.lowerBound)) } ?? .null,
            "last_seq": deleted.map { .integer(Int64($0.upperBound)) } ?? .null,
            "segments": .integer(Int64(segments)), "bytes": .integer(bytes), "spans_pruned": .integer(Int64(pruning.spans)),
            "traces_pruned": .integer(Int64(pruning.traces)), "snapshot": snapshot.map { .string($0) } ?? .null,
            "held": held.map { .string($0) } ?? .null,
        ])
    }
}

extension CoreRuntime {
    /// Runs a retention pass every ``RetentionPolicy/checkInterval`` until cancelled (under the
    /// work lease: one node at a time). A failed pass is logged and tried again at the next one;
    /// every step of a pass can be repeated.
    func runRetention() async {
        guard let retention else { return }
        while !Task.isCancelled {
            do {
                _ = try await runRetentionPass()
            } catch is CancellationError {
                return
            } catch {
                logger.error("a retention pass failed; the next one tries again", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: retention.policy.checkInterval)
        }
    }

    /// One retention pass (docs/operations.md, "Retention"): finishes a pass a crash stopped,
    /// then deletes the sealed segments the policy lets go —
    /// 1. only segments every projection has applied;
    /// 2. the snapshot of the state as of the new first seq − 1 is built and made durable;
    /// 3. the `log.retention` event is appended (the range, the chain value after it, the
    ///    snapshot) and applied;
    /// 4. the span projections of the range are pruned;
    /// 5. the segments are deleted, oldest first, and older snapshots removed.
    /// A crash anywhere leaves a data directory that opens and verifies; the next pass finishes.
    @discardableResult
    public func runRetentionPass() async throws -> RetentionPass {
        guard let retention else { throw CoreError(.invalidArgument, "retention needs a data directory") }
        // Not while a backup copies the files or an online rebuild reads the log.
        await storage.acquire(Self.logFiles)
        defer { storage.release(Self.logFiles) }
        let started = ContinuousClock.now
        var pass = RetentionPass(at: LogTime.now())
        defer {
            pass.seconds = (ContinuousClock.now - started).inSeconds
            retention.record(pass)
        }
        let store = projector.store
        // A pass a crash (or nodes still building their snapshots) stopped after its record:
        // finish it.
        if let record = try await store.retention(), await log.firstSeq < record.firstRetainedSeq {
            try await finish(record.latest, retention: retention, pass: &pass)
        }
        let policy = retention.policy
        guard policy.isEnabled else { return pass }
        // A deletion recorded earlier whose nodes are still building their snapshots waits.
        if pass.held != nil { return pass }
        let extent = try await log.retentionExtent()
        var total = extent.bytes
        let now = LogTime.now()
        let applied = await projector.appliedSeq
        var cut: UInt64?
        var bytes: Int64 = 0
        // Never the active segment, nor the last run holding records (the log keeps those).
        for range in extent.deletable {
            let old = policy.maxAge.map { age in range.lastTimestamp.map { $0 < now - age.nanoseconds } ?? true } ?? false
            let large = policy.maxBytes.map { total > $0 } ?? false
            guard old || large else { break }
            // Only what every projection has applied.
            guard range.endSeq - 1 <= applied else {
                pass.held = "the projections are at seq \(applied), behind \(range.name)"
                break
            }
            cut = range.endSeq
            total -= range.bytes
            bytes += range.bytes
        }
        guard let cut else { return pass }
        let first = await log.firstSeq
        let through = cut - 1
        let snapshot = try await retention.snapshots.build(through: through, log: log)
        try await stop(at: "after-snapshot", retention)
        guard let chain = try await log.chainValue(after: through) else {
            throw CoreError(.internalError, "the log has no chain value after seq \(through): retention needs the hash chain")
        }
        let record = LogRetention(firstSeq: first, lastSeq: through, chain: chain, snapshot: snapshot, bytes: bytes, recordedAt: now)
        let receipt = try await log.append([EventCodec.encode(.logRetention(record))])
        try await projector.waitUntilApplied(receipt.lastSeq, timeout: .seconds(60))
        logger.notice(
            "retention recorded a deletion",
            metadata: ["seqs": "\(first)...\(through)", "bytes": "\(bytes)", "snapshot": "\(snapshot)", "record_seq": "\(receipt.lastSeq)"]
        )
        try await stop(at: "after-record", retention)
        try await finish(record, retention: retention, pass: &pass)
        return pass
    }

    /// Steps 4 and 5 of a pass whose record is in the log: this node follows it (its snapshot,
    /// its span projections), every other node reading the log is waited for, then the records
    /// are deleted run by run and older snapshots removed. When a node has not built its snapshot
    /// in time, `pass.held` says which and the next pass tries again.
    private func finish(_ record: LogRetention, retention: Retention, pass: inout RetentionPass) async throws {
        let (snapshot, pruning) = try await follow(record, retention: retention)
        pass.snapshot = snapshot
        pass.pruning = pruning
        let waiting = try await waitForPeers(through: record.lastSeq, retention: retention)
        guard waiting.isEmpty else {
            pass.held = "waiting for nodes \(waiting.joined(separator: ", ")) to snapshot the state through seq \(record.lastSeq)"
            logger.notice(
                "retention waits for other nodes' snapshots before deleting",
                metadata: ["nodes": "\(waiting)", "through": "\(record.lastSeq)"]
            )
            return
        }
        try await stop(at: "before-deletion", retention)
        let first = await log.firstSeq
        let cut = record.lastSeq + 1
        var ends = try await log.retentionExtent().deletable.map(\.endSeq).filter { $0 > first && $0 < cut }
        if first < cut { ends.append(cut) }
        var deleted: ClosedRange<UInt64>?
        for (position, end) in ends.enumerated() {
            if position > 0 { try await stop(at: "between-deletions", retention) }
            let deletion = try await log.deleteRecords(before: end)
            if deletion.segments > 0, deletion.firstSeq <= deletion.lastSeq {
                deleted = min(deleted?.lowerBound ?? deletion.firstSeq, deletion.firstSeq)...max(deleted?.upperBound ?? 0, deletion.lastSeq)
                pass.segments += deletion.segments
                pass.bytes += deletion.bytes
            }
        }
        pass.deleted = deleted
        retention.snapshots.removeAll(except: snapshot)
    }

    /// What every node does for a deletion recorded in the log (`log.retention`), the one whose
    /// pass recorded it too: builds its own snapshot of the state through the range (idempotent;
    /// the log still holds the range: it is deleted only once every node has one) and prunes
    /// its span projections of the range. Returns the snapshot's name and what was pruned.
    private func follow(_ record: LogRetention, retention: Retention) async throws -> (String, SpanPruning) {
        let snapshot = try await retention.snapshots.build(through: record.lastSeq, log: log)
        var pruning = SpanPruning()
        if retention.followedThrough < record.lastSeq {
            pruning = try await projector.store.pruneSpans(through: record.lastSeq, snapshotAt: retention.snapshots.path(named: snapshot))
            retention.followedThrough = record.lastSeq
        }
        return (snapshot, pruning)
    }

    /// Waits up to 30 s (or the policy's interval when shorter, at least 2 s) for every other
    /// node to hold a snapshot through `seq`; returns those that still do not.
    private func waitForPeers(through seq: UInt64, retention: Retention) async throws -> [String] {
        let deadline = ContinuousClock.now + min(.seconds(30), max(.seconds(2), retention.policy.checkInterval))
        while true {
            let waiting = try await retention.peers.nodesWithoutSnapshot(through: seq)
            if waiting.isEmpty || ContinuousClock.now >= deadline { return waiting }
            try await Task.sleep(for: .milliseconds(250))
        }
    }

    /// Follows, on every node and whoever holds the work lease, each deletion the log records:
    /// once the projections apply a `log.retention` event, this node builds its snapshot and
    /// prunes its span projections (``follow(_:retention:)``), and keeps only its newest
    /// snapshot. Looks once a second until cancelled; a failure is logged and tried again.
    func followRetention() async {
        guard let retention else { return }
        while !Task.isCancelled {
            do {
                if let record = try await projector.store.retention()?.latest, retention.followedThrough < record.lastSeq {
                    await storage.acquire(Self.logFiles)
                    defer { storage.release(Self.logFiles) }
                    let (snapshot, pruning) = try await follow(record, retention: retention)
                    // The newest snapshot and the log after it rebuild everything an older one would.
                    retention.snapshots.removeAll(except: snapshot)
                    logger.info(
                        "followed a deletion retention recorded",
                        metadata: ["through": "\(record.lastSeq)", "snapshot": "\(snapshot)", "spans_pruned": "\(pruning.spans)"]
                    )
                }
            } catch is CancellationError {
                return
            } catch {
                logger.error("could not follow a deletion retention recorded; trying again", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: .seconds(1))
        }
    }

    /// The crash tests' stopping point: logs it and waits to be killed.
    private func stop(at point: String, _ retention: Retention) async throws {
        guard retention.policy.stopAt == point else { return }
        logger.notice("retention stopped at \(point) (CUSTODY_RETENTION_STOP_AT)")
        while true { try await Task.sleep(for: .seconds(3600)) }
    }
}

extension CoreRuntime {
    /// `/api/admin/stats`'s `retention` object (docs/api.md): the policy, the retained range
    /// (`first_seq`, `first_at`: the log's first record and its time), what retention deleted in
    /// all, and the last pass.
    public func retentionStatus() async -> JSONValue {
        let first = await log.firstSeq
        let firstAt = (try? await log.read(from: first, maxRecords: 1).first)?.map { JSONValue.string(RFC3339.format($0.timestamp)) } ?? .null
        let record = try? await projector.store.retention()
        let policy = retention?.policy ?? RetentionPolicy()
        return .object([
            "enabled": .bool(policy.isEnabled),
            "max_age_seconds": policy.maxAge.map { .integer($0.nanoseconds / 1_000_000_000) } ?? .null,
            "max_bytes": policy.maxBytes.map { .integer($0) } ?? .null,
            "interval_seconds": .number(policy.checkInterval.inSeconds),
            "first_seq": .integer(Int64(first)), "first_at": firstAt,
            "deleted_events": .integer(Int64(record?.deletedEvents ?? 0)), "deleted_bytes": .integer(record?.deletedBytes ?? 0),
            "passes_that_deleted": .integer(Int64(record?.passes ?? 0)),
            "latest": record.map { $0.latest.jsonValue } ?? .null,
            "last_pass": retention?.lastPass?.jsonValue ?? .null,
            "followed_through": .integer(Int64(retention?.followedThrough ?? 0)),
        ])
    }
}

extension CoreRuntime {
    /// Refuses projections that end before the log starts: retention deleted records they never
    /// applied (a node away while the other nodes deleted, or projections removed by hand), so
    /// catching up from the log would silently skip them.
    static func checkNotBehindRetention(log: any EventLog, store: any ProjectionStore) async throws {
        let first = await log.firstSeq
        let applied = try await store.appliedSeq()
        guard applied + 1 >= first else {
            throw LogError(
                .dataLoss,
                "the projections have applied events up to seq \(applied), but the log now starts at seq \(first): retention deleted seqs \(applied + 1)–\(first - 1) before they applied them. On one node, `custody rebuild` rebuilds them from the newest snapshot; in cluster mode, copy projections.sqlite and snapshots/ from a node that is caught up (docs/operations.md, \"Retention\")"
            )
        }
    }
}
