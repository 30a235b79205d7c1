import CustodyLog
import Logging

/// Keeps a ``ProjectionStore`` up to date with the log: follows the log from the store's
/// checkpoint, applies events in batches (one transaction each, checkpoint included), and lets
/// readers wait until a given seq is applied (read-your-writes).
///
/// A record that is not a valid event is skipped (its seq still counts as applied), logged and
/// counted: one bad record must not stop the projections forever.
public actor Projector {
    let log: SegmentLog
    public nonisolated let store: ProjectionStore
    let logger: Logger
    /// The most events applied in one transaction.
    let batchSize: Int

    private var applied: UInt64 = 0
    private var caughtUpAt = ContinuousClock.now
    private var waiters = PositionWaiters()
    private(set) var undecodableRecords = 0

    public init(log: SegmentLog, store: ProjectionStore, batchSize: Int = 8192, logger: Logger = Logger(label: "custody.projector")) {
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
        var current: DecodedBatch?
        while !Task.isCancelled {
            if current == nil {
                current = try await Self.fetch(log, from: applied + 1, upTo: await log.lastSeq, maxRecords: batchSize, logger: logger)
                if current == nil {
                    caughtUpAt = .now
                    do {
                        _ = try await log.waitForAppend(after: applied)
                    } catch let error as LogError where error.code == .closed {
                        return
                    }
                    continue
                }
            }
            // Read and decode the next batch while this one is written.
            let batch = current!
            let head = await log.lastSeq
            async let following = Self.fetch(log, from: batch.last.seq + 1, upTo: head, maxRecords: batchSize, logger: logger)
            try await store.apply(batch.events, checkpointSeq: batch.last.seq, checkpointTime: batch.last.timestamp)
            undecodableRecords += batch.undecodable
            applied = batch.last.seq
            wakeWaiters()
            current = try await following
        }
    }

    /// Applies records up to the log's current head and returns (no following): for rebuilds and
    /// tests.
    ///
    /// Reading and decoding the next batch overlaps with writing the current one.
    public func catchUp(progress: (@Sendable (UInt64, UInt64) -> Void)? = nil) async throws {
        applied = try await store.appliedSeq()
        let head = await log.lastSeq
        var batch = try await Self.fetch(log, from: applied + 1, upTo: head, maxRecords: batchSize, logger: logger)
        while let current = batch {
            async let following = Self.fetch(log, from: current.last.seq + 1, upTo: head, maxRecords: batchSize, logger: logger)
            try await store.apply(current.events, checkpointSeq: current.last.seq, checkpointTime: current.last.timestamp)
            undecodableRecords += current.undecodable
            applied = current.last.seq
            wakeWaiters()
            progress?(applied, head)
            batch = try await following
        }
        caughtUpAt = .now
    }

    /// A batch read from the log and decoded, ready to apply.
    struct DecodedBatch: Sendable {
        var events: [Event]
        var last: LogRecord
        var undecodable: Int
    }

    /// Reads and decodes up to `maxRecords` records from `seq` (none past `head`); nil at the end.
    static func fetch(_ log: SegmentLog, from seq: UInt64, upTo head: UInt64, maxRecords: Int, logger: Logger) async throws -> DecodedBatch? {
        guard seq <= head else { return nil }
        var records = try await log.read(from: seq, maxRecords: maxRecords)
        records.removeAll { $0.seq > head }
        guard let last = records.last else { return nil }
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
        return DecodedBatch(events: events, last: last, undecodable: undecodable)
    }

    /// Waits until every event up to `seq` is applied; after `timeout`, fails with a clear error
    /// (``CoreError/Code/overloaded``: the projections are behind).
    public func waitUntilApplied(_ seq: UInt64, timeout: Duration = .seconds(5)) async throws(CoreError) {
        if applied >= seq { return }
        let id = waiters.reserveID()
        let timer = Task {
            try? await Task.sleep(for: timeout)
            self.expireWaiter(id)
        }
        defer { timer.cancel() }
        do {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                if applied >= seq {
                    continuation.resume()
                } else {
                    waiters.add(id: id, seq, continuation)
                }
            }
        } catch {
            throw CoreError(
                .overloaded,
                "the projections have not reached seq \(seq) within \(timeout) (they are at \(applied)); retry later"
            )
        }
    }

    private func expireWaiter(_ id: Int) {
        waiters.expire(id)
    }

    private func wakeWaiters() {
        waiters.wake(upTo: applied)
    }

    /// How far behind the log the projections are: in events, and in seconds since they were last
    /// caught up (0 when they are).
    public func lag() async -> (events: UInt64, seconds: Double) {
        let head = await log.lastSeq
        guard head > applied else { return (0, 0) }
        let behind = ContinuousClock.now - caughtUpAt
        return (head - applied, behind.inSeconds)
    }
}
