import NIOCore

/// The durable, append-only log of records that Custody's core is built on: the seam a log
/// engine plugs into. ``SegmentLog`` (files on one disk) implements it; a replicated engine
/// (docs/architecture.md, "The two seams") implements the same requirements and must pass the
/// same conformance suite (`EventLogConformance` in `CustodyLogTesting`).
///
/// An implementation knows nothing of what the records mean: a record is bytes, a seq and a
/// timestamp.
///
/// Guarantees every implementation gives:
/// - **Acknowledged means durable under its policy.** ``append(_:timestamp:)`` returns only once
///   the records are durable as the engine's durability setting defines it (docs/operations.md
///   says what that is for each engine and setting). Concurrent appends may be, and should be,
///   gathered into one write (group commit); each caller still gets its own receipt.
/// - **Seqs** start at 1, are strictly increasing and never reused; the records of one append get
///   consecutive seqs. A seq range recorded as lost (``recordedLosses``) is never handed out
///   again.
/// - **Readers see only acknowledged records**: ``read(from:maxRecords:)``,
///   ``read(seqs:)``, ``lastSeq`` and ``waitForAppend(after:)`` never show a record whose
///   append has not returned (or would not have, had its caller waited).
/// - **Timestamps** (nanoseconds since the Unix epoch) never decrease with seq.
/// - **The hash chain** (``ChainValue``) is the same whatever the engine: computed over the
///   records' bytes in seq order, returned in each append's receipt, and readable after any seq.
/// - **A failed append** throws and leaves nothing a reader can see; the log may refuse appends
///   until it recovers, but never acknowledges a record it did not make durable.
/// - After ``close()``, appends and waits throw `LogError` with code `closed`.
public protocol EventLog: Actor {
    /// Appends `payloads` (at least one) as consecutive records, all stamped with `timestamp`
    /// (now when nil; never earlier than the log's last timestamp). Returns once they are
    /// durable under the log's policy, with their seqs and timestamp. Not cancellable once
    /// called: it becomes durable or fails. With a `fence` (``AppendFence``), only if the last
    /// append made under its key is the one the fence names; else it fails with `LogError` code
    /// `fenced` and appends nothing.
    func append(_ payloads: [ByteBuffer], timestamp: Int64?, fence: AppendFence?) async throws -> AppendReceipt

    /// Acknowledged records from `seq` on, in seq order, at most about `maxRecords` (whole
    /// batches may make it a few more); empty when `seq` is past the head. Records of a range
    /// recorded as lost are absent.
    func read(from seq: UInt64, maxRecords: Int) async throws -> [LogRecord]

    /// The acknowledged records at `seqs` (any order, duplicates allowed), in seq order, each
    /// once; seqs that are not (or no longer) in the log are left out.
    func read(seqs: [UInt64]) async throws -> [LogRecord]

    /// Waits until a record after `seq` is acknowledged and returns the head then. Throws
    /// `CancellationError` when the task is cancelled, `LogError` `closed` on close.
    func waitForAppend(after seq: UInt64) async throws -> UInt64

    /// The first seq whose timestamp is at or after `timestamp`; ``lastSeq`` + 1 when none is.
    func firstSeq(atOrAfter timestamp: Int64) async throws -> UInt64

    /// The first seq the log holds (1 until anything is removed).
    var firstSeq: UInt64 { get async }

    /// The durable head: the seq of the last acknowledged record (0 when empty).
    var lastSeq: UInt64 { get async }

    /// The durable head and the hash chain's value after it, read together
    /// (docs/log-format.md, "The hash chain"): what a signed checkpoint attests.
    var chainHead: ChainHead { get async }

    /// The hash chain's value after record `seq`: ``ChainValue/zero`` for 0; nil when the log
    /// does not hold `seq` or holds it from before the chain started. What a proof starts from.
    func chainValue(after seq: UInt64) async throws -> ChainValue?

    /// What opening the log found and did.
    nonisolated var recoveryReport: RecoveryReport { get }

    /// Every range recorded as lost, by this open's repair or earlier ones.
    nonisolated var recordedLosses: [QuarantineRecord] { get }

    /// The log's position, counters and (for an engine with files) its segments.
    func status() async -> LogStatus

    /// Reads what other writers of the log have appended: once it returns, ``lastSeq`` is at
    /// least the seq of every record acknowledged — by any writer, on any node — before the
    /// call, and that head is returned. A log with one writer (the segment log) is always
    /// there. Used by work that moves between nodes (a lease taken over) to start from all that
    /// the previous holder did. Throws when the engine does not answer.
    func synchronize() async throws -> UInt64

    /// The log's files up to its acknowledged head, for a consistent copy while it is written
    /// (``LogBackupPoint``). An engine that keeps no files of its own (JetStream) throws
    /// `invalidArgument`: its backup is the engine's (docs/operations.md).
    func backupPoint() async throws -> LogBackupPoint

    /// Retention: deletes the records before `cut` (docs/operations.md, "Retention") and
    /// returns what went. Afterwards ``firstSeq`` is `cut` (or, after a crash half-way, between
    /// the old first seq and `cut`: calling it again finishes), reads from older seqs start at
    /// ``firstSeq``, and the chain stays verifiable from `cut` on. The segment log deletes only
    /// whole sealed segments, so `cut` must be a segment's first seq there.
    func deleteRecords(before cut: UInt64) async throws -> LogDeletion

    /// What retention may delete, and how large the log is: the runs of records, oldest first,
    /// that ``deleteRecords(before:)`` removes whole — sealed segments for the segment log, runs
    /// of about a segment's size of messages for a stream. Never the records the log must keep
    /// (the active segment, the last run holding records: the chain goes on from them).
    func retentionExtent() async throws -> RetentionExtent

    /// Finishes pending appends, makes everything durable and releases the log's resources.
    func close() async
}

extension EventLog {
    /// The head: a log that only this process writes knows every acknowledged record.
    public func synchronize() async throws -> UInt64 { await lastSeq }

    /// No files to copy: the engine keeps the log (docs/operations.md says how to back it up).
    public func backupPoint() async throws -> LogBackupPoint {
        throw LogError(.invalidArgument, "this log is kept by its engine, not in files: back it up with the engine's own tools")
    }

    /// Not supported by this engine.
    public func deleteRecords(before cut: UInt64) async throws -> LogDeletion {
        throw LogError(.invalidArgument, "this log engine does not delete records")
    }

    /// The sealed segments before the last one holding records, from ``status()``.
    public func retentionExtent() async throws -> RetentionExtent {
        let segments = await status().segments
        let lastHolding = segments.last(where: { $0.endSeq > $0.baseSeq })?.baseSeq ?? 0
        var deletable: [DeletableRange] = []
        for position in segments.indices.dropLast() {
            let segment = segments[position]
            let next = segments[position + 1].baseSeq
            guard segment.sealed, next <= lastHolding else { break }
            deletable.append(
                DeletableRange(
                    name: segment.name,
                    firstSeq: segment.baseSeq,
                    endSeq: next,
                    bytes: segment.bytes,
                    lastTimestamp: segment.lastTimestamp
                )
            )
        }
        return RetentionExtent(bytes: segments.reduce(0) { $0 + $1.bytes }, deletable: deletable)
    }

    /// Appends `payloads` stamped now.
    public func append(_ payloads: [ByteBuffer]) async throws -> AppendReceipt {
        try await append(payloads, timestamp: nil, fence: nil)
    }

    /// Appends `payloads` stamped `timestamp`, without a fence.
    public func append(_ payloads: [ByteBuffer], timestamp: Int64?) async throws -> AppendReceipt {
        try await append(payloads, timestamp: timestamp, fence: nil)
    }

    /// Records from `seq` on, in batches as they were read, following the log as it grows; ends
    /// when the log is closed.
    public nonisolated func records(from seq: UInt64) -> LogTail {
        LogTail(log: self, start: seq)
    }
}
