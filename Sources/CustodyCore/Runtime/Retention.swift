import CustodyLog
import Logging
import Synchronization

/// Retention of one runtime (docs/operations.md, "Retention"): its policy, its state snapshots,
/// and what its last pass did.
public final class Retention: Sendable {
    public let policy: RetentionPolicy
    public let snapshots: StateSnapshots
    private let last = Mutex<RetentionPass?>(nil)

    public init(policy: RetentionPolicy, snapshots: StateSnapshots) {
        self.policy = policy
        self.snapshots = snapshots
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
        // A pass a crash stopped after its record: finish it.
        if let record = try await store.retention(), await log.firstSeq < record.firstRetainedSeq {
            try await finish(record.latest, retention: retention, pass: &pass)
        }
        let policy = retention.policy
        guard policy.isEnabled else { return pass }
        let status = await log.status()
        var total = status.segments.reduce(Int64(0)) { $0 + $1.bytes }
        let now = LogTime.now()
        let segments = status.segments
        // Never the active segment, nor the last one holding records (the chain goes on from it).
        let lastHolding = segments.last(where: { $0.endSeq > $0.baseSeq })?.baseSeq ?? 0
        let applied = await projector.appliedSeq
        var cut: UInt64?
        var bytes: Int64 = 0
        for position in segments.indices.dropLast() {
            let segment = segments[position]
            let next = segments[position + 1].baseSeq
            guard segment.sealed, next <= lastHolding else { break }
            let old = policy.maxAge.map { age in segment.lastTimestamp.map { $0 < now - age.nanoseconds } ?? true } ?? false
            let large = policy.maxBytes.map { total > $0 } ?? false
            guard old || large else { break }
            // Only what every projection has applied.
            guard segment.endSeq - 1 <= applied else {
                pass.held = "the projections are at seq \(applied), behind segment \(segment.name)"
                break
            }
            cut = next
            total -= segment.bytes
            bytes += segment.bytes
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

    /// Steps 4 and 5 of a pass whose record is in the log.
    private func finish(_ record: LogRetention, retention: Retention, pass: inout RetentionPass) async throws {
        let snapshotPath = retention.snapshots.path(named: record.snapshot)
        pass.snapshot = record.snapshot
        pass.pruning = try await projector.store.pruneSpans(through: record.lastSeq, snapshotAt: snapshotPath)
        let first = await log.firstSeq
        let bases = await log.status().segments.map(\.baseSeq).filter { $0 > first && $0 <= record.lastSeq + 1 }
        var deleted: ClosedRange<UInt64>?
        for (position, base) in bases.enumerated() {
            if position > 0 { try await stop(at: "between-deletions", retention) }
            let deletion = try await log.deleteRecords(before: base)
            if deletion.segments > 0 {
                deleted = (deleted?.lowerBound ?? deletion.firstSeq)...deletion.lastSeq
                pass.segments += deletion.segments
                pass.bytes += deletion.bytes
            }
        }
        pass.deleted = deleted
        retention.snapshots.removeAll(except: record.snapshot)
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
        ])
    }
}
