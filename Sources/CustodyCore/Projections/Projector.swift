import CustodyLog
import Logging

/// Keeps a ``ProjectionStore`` up to date with the log: follows the log from the store's
/// checkpoint, applies events in batches (one transaction each, checkpoint included), and lets
/// readers wait until a given seq is applied (read-your-writes).
///
/// A record that is not a valid event is skipped (its seq still counts as applied), logged and
/// counted: one bad record must not stop the projections forever.
public actor Projector: PositionFollower {
    let log: any EventLog
    public nonisolated let store: any ProjectionStore
    let logger: Logger
    /// The most events applied in one transaction.
    let batchSize: Int

    private var applied: UInt64 = 0
    var waiters = PositionWaiters()
    var followedPosition: UInt64 { applied }
    private(set) var undecodableRecords = 0
    /// A rebuilt store waiting to be swapped in between two batches (``adopt(rebuilt:)``).
    private var pendingAdoption: (store: any ProjectionStore, continuation: CheckedContinuation<Void, any Error>)?
    /// Fired when an adoption is asked for, so that the loop stops waiting for an append.
    private let adoptionSignal = WakeSignal()
    private var running = false
    /// Whether another node applies events to the (shared) store, which this one follows.
    public private(set) var isFollowing = false

    public init(log: any EventLog, store: any ProjectionStore, batchSize: Int = 8192, logger: Logger = Logger(label: "custody.projector")) {
        self.log = log
        self.store = store
        self.batchSize = batchSize
        self.logger = logger
    }

    /// The seq of the last event applied.
    public var appliedSeq: UInt64 { applied }

    /// Follows the log until the task is cancelled or the log closes. Resumes from the store's
    /// checkpoint.
    public func run() async throws {
        applied = try await store.appliedSeq()
        wakeWaiters()
        running = true
        defer {
            running = false
            pendingAdoption?.continuation.resume(throwing: CancellationError())
            pendingAdoption = nil
        }
        var current: DecodedBatch?
        while !Task.isCancelled {
            if let adoption = pendingAdoption {
                pendingAdoption = nil
                do {
                    try await swapIn(adoption.store)
                    current = nil
                    adoption.continuation.resume()
                } catch {
                    adoption.continuation.resume(throwing: error)
                }
            }
            isFollowing = await !mayApply()
            guard !isFollowing else {
                // Another node applies events to this (shared) store: follow its checkpoint.
                try await followWriter()
                current = nil
                continue
            }
            if current == nil {
                current = try await Self.fetch(log, from: applied + 1, upTo: await log.lastSeq, maxRecords: batchSize, logger: logger)
                if current == nil {
                    if pendingAdoption != nil { continue }
                    guard try await waitForAppendOrAdoption() else { return }
                    continue
                }
            }
            // Read and decode the next batch while this one is written.
            let batch = current!
            let head = await log.lastSeq
            async let following = Self.fetch(log, from: batch.last.seq + 1, upTo: head, maxRecords: batchSize, logger: logger)
            guard try await applyRetrying(batch) else {
                _ = try? await following
                current = nil
                continue
            }
            undecodableRecords += batch.undecodable
            applied = batch.last.seq
            wakeWaiters()
            current = try await following
        }
    }

    /// How often a node that does not apply events reads the checkpoint of the node that does.
    static let followInterval: Duration = .milliseconds(50)

    /// Whether this node may apply events to the store now; false (after a pause) when the store
    /// cannot say (unreachable): the loop then follows the checkpoint, retrying.
    private func mayApply() async -> Bool {
        do {
            let may = try await store.mayApply()
            lastFailure = nil
            return may
        } catch {
            failures += 1
            lastFailure = "\(error)"
            logger.error("the projection store cannot be reached; retrying", metadata: ["error": "\(error)", "attempt": "\(failures)"])
            try? await Task.sleep(for: .seconds(1))
            return false
        }
    }

    /// While another node applies events: takes the store's checkpoint as applied (waking the
    /// readers waiting for it), then pauses.
    private func followWriter() async throws {
        do {
            let stored = try await store.appliedSeq()
            if stored > applied {
                applied = stored
                wakeWaiters()
            }
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            logger.warning("reading the projections' checkpoint failed; retrying", metadata: ["error": "\(error)"])
        }
        try await Task.sleep(for: Self.followInterval)
    }

    /// Applies a batch, retrying with backoff when the database refuses it (busy, an I/O error):
    /// the live projections must not stop for good on a transient failure. Nothing is applied
    /// twice: a failed transaction wrote nothing, checkpoint included. Returns false, without
    /// applying it, when the store's checkpoint has moved past ``appliedSeq`` meanwhile (another
    /// node applied the batch: it took over a shared store) or this node may no longer apply;
    /// ``appliedSeq`` is then the store's checkpoint.
    private func applyRetrying(_ batch: DecodedBatch) async throws -> Bool {
        var delay: Duration = .milliseconds(50)
        while true {
            do {
                try await store.apply(batch.batch)
                failures = 0
                lastFailure = nil
                return true
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                // The store's checkpoint is the truth.
                if let stored = try? await store.appliedSeq(), stored > applied {
                    logger.notice(
                        "another node applied these events to the projections; following its checkpoint",
                        metadata: ["from_seq": "\(batch.batch.events.first?.seq ?? 0)", "checkpoint": "\(stored)"]
                    )
                    applied = stored
                    wakeWaiters()
                    return false
                }
                if (try? await store.mayApply()) == false { return false }
                failures += 1
                lastFailure = "\(error)"
                logger.error(
                    "applying events to the projections failed; retrying",
                    metadata: ["from_seq": "\(batch.batch.events.first?.seq ?? 0)", "error": "\(error)", "attempt": "\(failures)"]
                )
                try await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(5))
            }
        }
    }

    /// Consecutive failed attempts to apply a batch (0 when the last one succeeded).
    public private(set) var failures = 0
    /// The last failure to reach or write the store, while ``failures`` is above 0.
    private var lastFailure: String?

    /// Applies records up to the log's current head and returns (no following): for rebuilds and
    /// tests.
    ///
    /// Reading and decoding the next batch overlaps with writing the current one.
    /// On a shared store written by another node, it waits (at most `followingFor`) for that
    /// node's checkpoint to reach the log's head, unless this node can take over the writing.
    public func catchUp(
        progress: (@Sendable (UInt64, UInt64) -> Void)? = nil,
        followingFor timeout: Duration = .seconds(60)
    ) async throws {
        applied = try await store.appliedSeq()
        let head = await log.lastSeq
        let deadline = ContinuousClock.now + timeout
        while applied < head, try await !store.mayApply() {
            guard ContinuousClock.now < deadline else {
                throw CoreError(
                    .overloaded,
                    "the node applying events to the projections has not reached seq \(head) within \(timeout) (they are at \(applied))"
                )
            }
            try await Task.sleep(for: Self.followInterval)
            applied = max(applied, try await store.appliedSeq())
            wakeWaiters()
        }
        var batch = try await Self.fetch(log, from: applied + 1, upTo: head, maxRecords: batchSize, logger: logger)
        while let current = batch {
            try Task.checkCancellation()
            async let following = Self.fetch(log, from: current.last.seq + 1, upTo: head, maxRecords: batchSize, logger: logger)
            try await store.apply(current.batch)
            undecodableRecords += current.undecodable
            applied = current.last.seq
            wakeWaiters()
            progress?(applied, head)
            batch = try await following
        }
    }

    /// Swaps in a store rebuilt from the log (``ProjectionRebuild``): the projector brings it up
    /// to what it has applied itself, then has its own store take the rebuilt one's contents
    /// (``ProjectionStore/replaceContents(with:)``), between two batches. Returns once it is in
    /// use; on failure the rebuilt store is the caller's to close.
    public func adopt(rebuilt: any ProjectionStore) async throws {
        guard running else {
            try await swapIn(rebuilt)
            return
        }
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            pendingAdoption = (rebuilt, continuation)
            // Wake the loop if it is waiting for an append.
            adoptionSignal.fire()
        }
    }

    /// Waits until the log has a record after ``appliedSeq`` or an adoption is asked for.
    /// Returns false when the log has closed.
    private func waitForAppendOrAdoption() async throws -> Bool {
        let log = log
        let applied = applied
        let signal = adoptionSignal
        return try await withThrowingTaskGroup(of: Bool.self) { group in
            group.addTask {
                do {
                    _ = try await log.waitForAppend(after: applied)
                    return true
                } catch let error as LogError where error.code == .closed {
                    return false
                }
            }
            group.addTask {
                // Ends with a request, or when cancelled (the append came first).
                await signal.wait()
                return true
            }
            let result = try await group.next() ?? true
            group.cancelAll()
            return result
        }
    }

    private func swapIn(_ fresh: any ProjectionStore) async throws {
        var seq = try await fresh.appliedSeq()
        while seq < applied {
            guard let batch = try await Self.fetch(log, from: seq + 1, upTo: applied, maxRecords: batchSize, logger: logger) else { break }
            try await fresh.apply(batch.batch)
            seq = batch.last.seq
        }
        let adopted = try await store.replaceContents(with: fresh)
        logger.notice("rebuilt projections swapped in", metadata: ["applied_seq": "\(adopted)"])
    }

    /// A batch read from the log and decoded, ready to apply.
    struct DecodedBatch: Sendable {
        /// The events, the checkpoint, and their spans grouped by trace (worked out here rather
        /// than in the write transaction).
        var batch: ProjectionBatch
        var last: LogRecord
        var undecodable: Int
    }

    /// Reads and decodes up to `maxRecords` records from `seq` (none past `head`); nil at the end.
    static func fetch(_ log: any EventLog, from seq: UInt64, upTo head: UInt64, maxRecords: Int, logger: Logger) async throws -> DecodedBatch? {
        guard seq <= head else { return nil }
        var records = try await log.read(from: seq, maxRecords: maxRecords)
        records.removeAll { $0.seq > head }
        guard let last = records.last else { return nil }
        // Never past records retention deleted before they were applied (a node that was away
        // while another deleted them): the projections would silently miss them.
        if records[0].seq > seq, await log.firstSeq > seq {
            throw LogError(
                .dataLoss,
                "retention deleted seqs \(seq)–\(records[0].seq - 1) before these projections applied them (docs/operations.md, \"Retention\")"
            )
        }
        var events: [Event] = []
        events.reserveCapacity(records.count)
        var undecodable = 0
        for record in records {
            do {
                events.append(try EventCodec.decode(record))
            } catch {
                undecodable += 1
                logger.error("a log record is not an event; skipped", metadata: ["seq": "\(record.seq)", "error": "\(error)"])
            }
        }
        return DecodedBatch(
            batch: ProjectionBatch(events, checkpointSeq: last.seq, checkpointTime: last.timestamp),
            last: last,
            undecodable: undecodable
        )
    }

    /// Waits until every event up to `seq` is applied; after `timeout`, fails with a clear error
    /// (``CoreError/Code/overloaded``: the projections are behind).
    public func waitUntilApplied(_ seq: UInt64, timeout: Duration = .seconds(5)) async throws(CoreError) {
        guard await waitForPosition(seq, timeout: timeout) else {
            throw CoreError(
                .overloaded,
                "the projections have not reached seq \(seq) within \(timeout) (they are at \(applied))\(lastFailure.map { "; the projection store fails: \($0)" } ?? ""); retry later"
            )
        }
    }

    private func wakeWaiters() {
        waiters.wake(upTo: applied)
    }

    /// How far behind the log the projections are: in events, and in seconds — how long the
    /// oldest event not yet applied has been in the log (0 when caught up).
    public func lag() async -> (events: UInt64, seconds: Double) {
        // The seq applied when asked: the loop may apply more during the awaits below (this actor
        // is reentrant), even past `head`.
        let applied = applied
        let head = await log.lastSeq
        guard head > applied else { return (0, 0) }
        guard let oldest = try? await log.read(from: applied + 1, maxRecords: 1).first(where: { $0.seq > applied }) else {
            return (head - applied, 0)
        }
        return (head - applied, max(0, Double(LogTime.now() - oldest.timestamp) / 1e9))
    }

}
