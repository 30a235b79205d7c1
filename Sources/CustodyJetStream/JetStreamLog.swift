import CustodyLog
import DequeModule
import Logging
import NIOCore
import NIOPosix

/// The ``EventLog`` of cluster mode: the log kept in a replicated NATS JetStream stream, written
/// and read by any number of Custody nodes (docs/operations.md, "Cluster mode";
/// docs/architecture.md, "The JetStream log").
///
/// Guarantees, beside those of ``EventLog``:
/// - **One message per group commit.** Concurrent appends on a node are gathered into one
///   message whose data is a ``BatchGroup``: the log's batches, byte for byte what a segment file
///   holds, with the same hash chain. An append under a fence is a message of its own.
/// - **Seqs and the chain are the same on every node, by one rule read in stream order.** A
///   node encodes each message on top of the last message it knows. The log is the stream's
///   messages that *continue* it: read in stream order, a message belongs to the log when its
///   first seq is the next seq and its fence (below) holds; any other message — a node that lost
///   a race — is skipped, by every node alike, since every node reads the same messages in the
///   same order. A publish carries `Nats-Expected-Last-Sequence` (the last message known), so
///   JetStream refuses most lost races at once (error 10071); nats-server 2.9 checks it against
///   the messages it has applied, not those still being replicated, so two racing messages can
///   both be stored — the rule, not the header, is what keeps the log whole. An append is
///   acknowledged only once its message is known to belong to the log; a message that was
///   stored but skipped is encoded again on the new head and published again, with a new id.
/// - **Fences** (``AppendFence``) travel with the message (header `Custody-Fence: SEQ KEY`) and
///   are part of the rule: the message belongs to the log only if the last message of the log
///   under the key holds SEQ (0: there is none). Every node keeps the seqs of the last append
///   under each key (``fenceHeads``, all keys since the stream began: memory grows with the
///   number of tasks and orders).
/// - **An acknowledgement** is JetStream's: the message is stored by a majority of the stream's
///   replicas (docs/operations.md says what that survives on each nats-server version).
/// - **Unknown outcomes are retried, never doubled.** A publish that gets no answer (a leader
///   election, a lost connection) is sent again with the same bytes and the same `Nats-Msg-Id`
///   for up to ``Configuration/unknownOutcomeLimit`` (less than the stream's duplicate window):
///   JetStream stores it at most once and answers `duplicate` for a copy. Past that limit the
///   append fails with `storageUnavailable`, and its outcome stays unknown: its records may still
///   appear in the log, stored once.
/// - **Other nodes' writes** arrive through an ordered consumer that whoever waits on the head
///   (``waitForAppend(after:)``: the projector, the live stream) drives; ``lastSeq`` is the head
///   this node knows of, which includes its own acknowledged appends at once.
public actor JetStreamLog: EventLog {
    /// Where the stream is and how it is written.
    public struct Configuration: Sendable {
        /// The NATS servers, `nats://host:port` separated by commas.
        public var urls: String
        /// The stream's name; its subjects are `<name in lowercase>.>`.
        public var stream: String
        /// How many JetStream nodes store each message (a new stream is made with this many; an
        /// existing one must have it).
        public var replicas: Int
        /// This node's name, in message ids (and leases, stats and `cluster status`).
        public var nodeName: String
        /// A batch closes once it holds this many bytes of records.
        public var batchBytes: Int
        /// How long a publish whose outcome is unknown is sent again with the same message id
        /// before the append fails. Below ``duplicateWindow``, so that a late copy is still
        /// recognized.
        public var unknownOutcomeLimit: Duration
        /// How long one publish waits for JetStream's answer.
        public var publishTimeout: Duration
        /// The stream's duplicate window (JetStream keeps message ids this long); at least 2
        /// minutes.
        public var duplicateWindow: Duration
        /// Bytes of recent messages kept in memory for reads; older ones are fetched again.
        public var cacheBytes: Int
        /// Bytes of appends that may wait for the writer before appends are refused
        /// (`overloaded`).
        public var maximumPendingBytes: Int
        /// How long opening waits for the servers to form a cluster and answer.
        public var openTimeout: Duration
        /// Whether opening creates the stream when there is none (a server's node does; an
        /// offline reader such as `custody rebuild` does not).
        public var createsStream: Bool
        /// Whether retention may purge the oldest messages (docs/operations.md, "Retention"): a
        /// stream made with it allows purging; an existing one that denies it is refused.
        public var allowsRetention: Bool = false
        /// Retention deletes runs of messages of at least this many bytes (the segment size).
        public var retentionRunBytes: Int64 = 64 << 20

        public init(
            urls: String,
            stream: String = "CUSTODY",
            replicas: Int = 3,
            nodeName: String,
            batchBytes: Int = 64 << 10,
            unknownOutcomeLimit: Duration = .seconds(60),
            publishTimeout: Duration = .seconds(3),
            duplicateWindow: Duration = .seconds(120),
            cacheBytes: Int = 64 << 20,
            maximumPendingBytes: Int = 64 << 20,
            openTimeout: Duration = .seconds(30),
            createsStream: Bool = true
        ) {
            self.urls = urls
            self.stream = stream
            self.replicas = replicas
            self.nodeName = nodeName
            self.batchBytes = batchBytes
            self.unknownOutcomeLimit = unknownOutcomeLimit
            self.publishTimeout = publishTimeout
            self.duplicateWindow = duplicateWindow
            self.cacheBytes = cacheBytes
            self.maximumPendingBytes = maximumPendingBytes
            self.openTimeout = openTimeout
            self.createsStream = createsStream
        }

        /// The prefix of the stream's subjects.
        var subjectPrefix: String { stream.lowercased() }
        /// The subject of unfenced groups.
        var batchSubject: String { subjectPrefix + ".batch" }

    }

    /// One message of the stream as the index knows it.
    struct Entry {
        var sequence: UInt64
        var firstSeq: UInt64
        var lastSeq: UInt64
        var lastTimestamp: Int64
        var chain: ChainValue
        var bytes: Int
    }

    struct PendingAppend {
        var payloads: [ByteBuffer]
        var timestamp: Int64?
        var fence: AppendFence?
        var bytes: Int
        var continuation: CheckedContinuation<AppendReceipt, any Error>
    }

    enum Lifecycle {
        case open
        case closing
        case closed
    }

    public nonisolated let configuration: Configuration
    /// The connection to the servers (for `cluster status` and `/readyz`).
    public nonisolated let connection: JetStreamConnection
    private let subscription: OrderedSubscription
    private let threads: NIOThreadPool
    private let logger: Logger
    /// What opening found (the stream created or checked, the messages indexed).
    public nonisolated let recoveryReport: RecoveryReport
    /// What opening found, in a sentence: the stream, made or found, and its size.
    public nonisolated let openingSummary: String
    public nonisolated var recordedLosses: [QuarantineRecord] { [] }

    /// Every message of the stream in order (the log's index).
    var entries: [Entry] = []
    /// The stream sequence of the last message seen, a valid group or not.
    var lastStreamSequence: UInt64 = 0
    private var lastTimestamp: Int64 = 0
    /// Messages on the stream's subjects that are not batch groups, or leave a gap: skipped, and
    /// reported by ``status()`` as a failure.
    private var foreignMessages = 0
    /// Messages skipped because another node's message came first (a lost race): harmless.
    private var supersededMessages = 0
    /// Stream sequences the stream holds no message at (a diagnostic).
    private var skippedStreamSequences: UInt64 = 0
    /// Publishes refused as stale after which no newer message could be read (a diagnostic).
    private var fencedWithoutProgress = 0
    /// Where the log starts: 1, or after retention purged the oldest messages the first seq of
    /// the first message kept, and the chain value before it.
    var startSeq: UInt64 = 1
    var startChain = ChainValue.zero
    /// The seqs of the last append under each fence key (``AppendFence``).
    private var fenceHeads: [String: ClosedRange<UInt64>] = [:]
    /// The header a message's fence travels in.
    static let fenceHeader = "Custody-Fence"
    var cache: [UInt64: BatchGroup] = [:]
    private var cacheOrder = Deque<UInt64>()
    var cachedBytes = 0

    private var pending: [PendingAppend] = []
    private var pendingBytes = 0
    private var writing = false
    private var following = false
    private var lifecycle = Lifecycle.open
    private var failure: String?
    private var idleWaiters: [CheckedContinuation<Void, Never>] = []
    private var headWaiters: [Int: CheckedContinuation<Void, any Error>] = [:]
    private var nextWaiterID = 0
    private var messageCounter: UInt64 = 0
    private let messageIDPrefix: String
    private let maximumMessageBytes: Int
    private var statistics = LogStatistics()

    private init(
        configuration: Configuration,
        connection: JetStreamConnection,
        subscription: OrderedSubscription,
        threads: NIOThreadPool,
        logger: Logger,
        recoveryReport: RecoveryReport,
        openingSummary: String
    ) {
        self.configuration = configuration
        self.connection = connection
        self.subscription = subscription
        self.threads = threads
        self.logger = logger
        self.recoveryReport = recoveryReport
        self.openingSummary = openingSummary
        // Unique per process: the node's name and a random number, then a counter.
        messageIDPrefix = "\(configuration.nodeName)-\(String(UInt64.random(in: 0...UInt64.max), radix: 36))-"
        // Room for the headers beside the data.
        maximumMessageBytes = max(4096, connection.maximumPayload - 2048)
    }

    // MARK: Opening

    /// Connects, creates the stream or checks that the existing one fits (file storage, the
    /// configured replicas, deny delete and purge, a duplicate window of at least 2 minutes), and
    /// reads it to the end to index it. Waits up to ``Configuration/openTimeout`` for the servers
    /// to answer (a cluster that is still electing its leaders).
    public static func open(_ configuration: Configuration, logger: Logger = Logger(label: "custody.jetstream")) async throws -> JetStreamLog {
        precondition(configuration.duplicateWindow >= .seconds(120), "the duplicate window is at least 2 minutes")
        precondition(configuration.unknownOutcomeLimit < configuration.duplicateWindow, "unknown outcomes are retried within the duplicate window")
        let started = ContinuousClock.now
        let threads = NIOThreadPool(numberOfThreads: 4)
        threads.start()
        do {
            let deadline = started + configuration.openTimeout
            let (connection, info, created) = try await retryingUntil(deadline) {
                let connection = try await JetStreamConnection.connect(to: configuration.urls, threads: threads)
                do {
                    if let existing = try await connection.streamInfo(configuration.stream) {
                        return (connection, existing, false)
                    }
                    guard configuration.createsStream else {
                        throw JetStreamError(.streamMismatch, "there is no stream \(configuration.stream) on \(configuration.urls)")
                    }
                    let made = try await connection.addStream(
                        name: configuration.stream,
                        subjects: [configuration.subjectPrefix + ".>"],
                        replicas: configuration.replicas,
                        duplicateWindow: configuration.duplicateWindow.nanoseconds,
                        allowsPurge: configuration.allowsRetention
                    )
                    return (connection, made, true)
                } catch {
                    await connection.close()
                    throw error
                }
            }
            if let mismatch = Self.mismatch(info, configuration) {
                await connection.close()
                throw JetStreamError(.streamMismatch, "stream \(configuration.stream) does not fit cluster mode: \(mismatch)")
            }
            // A stream just made may still be electing its leader: its first consumer can time out.
            let subscription: OrderedSubscription
            do {
                subscription = try await retryingUntil(deadline) {
                    try await connection.subscribeOrdered(
                        stream: configuration.stream,
                        subject: configuration.subjectPrefix + ".>",
                        from: 1,
                        header: fenceHeader
                    )
                }
            } catch {
                await connection.close()
                throw error
            }
            var report = RecoveryReport()
            let summary =
                (created ? "created stream \(configuration.stream)" : "found stream \(configuration.stream)")
                + " (\(info.replicas) replicas, file storage, leader \(info.leader ?? "none"), \(info.messages) messages, \(info.bytes) bytes"
                + (info.denyPurge ? ")" : ", purging allowed for retention)")
            // A stream retention purged starts where its start record says.
            var start: StreamStart.Start?
            if info.messages > 0 && info.firstSequence > 1 {
                do {
                    start = try await StreamStart.find(streamSequence: info.firstSequence, configuration: configuration, connection: connection)
                } catch {
                    await subscription.close()
                    await connection.close()
                    throw error
                }
            }
            let log = JetStreamLog(
                configuration: configuration,
                connection: connection,
                subscription: subscription,
                threads: threads,
                logger: logger,
                recoveryReport: report,
                openingSummary: summary
            )
            if let start { await log.begin(at: start) }
            try await log.follow(through: info.lastSequence)
            report.endSeq = await log.lastSeq + 1
            report.bytesWalked = Int64(info.bytes)
            report.durationSeconds = (ContinuousClock.now - started).inSeconds
            await log.setReport(report)
            return log
        } catch {
            try? await threads.shutdownGracefully()
            throw error
        }
    }

    private var openedReport: RecoveryReport?
    private func setReport(_ report: RecoveryReport) { openedReport = report }

    /// Why `info` does not fit the configuration; nil when it does.
    static func mismatch(_ info: JetStreamConnection.StreamInfo, _ configuration: Configuration) -> String? {
        var problems: [String] = []
        if !info.subjects.contains(configuration.subjectPrefix + ".>") {
            problems.append("its subjects are \(info.subjects), not \(configuration.subjectPrefix).>")
        }
        if !info.fileStorage { problems.append("it is kept in memory, not in files") }
        if info.replicas != configuration.replicas { problems.append("it has \(info.replicas) replicas, not \(configuration.replicas)") }
        if !info.denyDelete { problems.append("it allows deleting messages") }
        if configuration.allowsRetention && info.denyPurge {
            problems.append(
                "it denies purging, which retention needs, and JetStream never lets that be undone: retention runs on a stream made by a node started with retention on (a new --stream)"
            )
        }
        if info.duplicateWindow < configuration.duplicateWindow.nanoseconds {
            problems.append(
                "its duplicate window is \(info.duplicateWindow / 1_000_000_000) s, under \(configuration.duplicateWindow.nanoseconds / 1_000_000_000) s"
            )
        }
        return problems.isEmpty ? nil : problems.joined(separator: "; ")
    }

    /// Runs `body` until it succeeds, while it fails with a transient error and `deadline` has not
    /// passed.
    static func retryingUntil<Result: Sendable>(_ deadline: ContinuousClock.Instant, _ body: () async throws -> Result) async throws -> Result {
        while true {
            do {
                return try await body()
            } catch let error as JetStreamError where error.isTransient || error.code == .notFound {
                guard ContinuousClock.now < deadline else { throw error }
                try await Task.sleep(for: .milliseconds(100))
            }
        }
    }

    // MARK: The index

    /// Takes message `sequence` of the stream into the index by the log's rule (nothing when the
    /// index has it already): a batch group whose first seq is the next seq and whose fence
    /// (`fenceHeader`, the header's value) holds belongs to the log; another is skipped —
    /// counted as superseded when it lost a race, as foreign otherwise.
    private func ingest(sequence: UInt64, data: ByteBuffer, fenceHeader: String?) {
        guard sequence > lastStreamSequence else { return }
        if sequence > lastStreamSequence + 1 {
            // A stream sequence with no message: harmless (every node sees the same stream),
            // counted for diagnosis.
            skippedStreamSequences += sequence - lastStreamSequence - 1
            logger.info(
                "the stream has no message at some sequences; going past them",
                metadata: ["from": "\(lastStreamSequence + 1)", "to": "\(sequence - 1)"]
            )
        }
        lastStreamSequence = sequence
        let group: BatchGroup
        do {
            group = try BatchGroup(validating: data)
        } catch {
            foreignMessages += 1
            logger.error("a message of the stream is not a batch group; skipped", metadata: ["sequence": "\(sequence)", "error": "\(error)"])
            return
        }
        guard group.firstSeq <= nextSeq else {
            foreignMessages += 1
            logger.error(
                "a message of the stream leaves a gap in the log; skipped",
                metadata: ["sequence": "\(sequence)", "first_seq": "\(group.firstSeq)", "expected": "\(nextSeq)"]
            )
            return
        }
        guard group.firstSeq == nextSeq else {
            supersededMessages += 1
            return
        }
        if let fenceHeader {
            guard let fence = AppendFence(header: fenceHeader) else {
                foreignMessages += 1
                logger.error("a message of the stream has a fence that does not parse; skipped", metadata: ["sequence": "\(sequence)"])
                return
            }
            guard holds(fence) else {
                supersededMessages += 1
                return
            }
            fenceHeads[fence.key] = group.firstSeq...group.lastSeq
        }
        index(group, sequence: sequence)
    }

    /// Whether `fence` holds against the log as indexed: the last append under its key holds its
    /// seq, or there is none and its seq is 0.
    ///
    /// After retention purged the oldest messages, a node that opened since knows no head for a
    /// key whose last append was purged: a fence naming a seq before the log's start then holds.
    /// Every node agrees on that in practice: an append is fenced on the seq its node's
    /// projections hold for the key, every node's projections had applied the purged range
    /// before the purge, and a node checks the fence against its own heads before publishing.
    private func holds(_ fence: AppendFence) -> Bool {
        guard let head = fenceHeads[fence.key] else { return fence.lastSeq == 0 || fence.lastSeq < startSeq }
        return head.contains(fence.lastSeq)
    }

    private func index(_ group: BatchGroup, sequence: UInt64) {
        entries.append(
            Entry(
                sequence: sequence,
                firstSeq: group.firstSeq,
                lastSeq: group.lastSeq,
                lastTimestamp: group.lastTimestamp,
                chain: group.chain,
                bytes: group.bytes.readableBytes
            )
        )
        lastTimestamp = max(lastTimestamp, group.lastTimestamp)
        remember(group, sequence: sequence)
        wakeHeadWaiters()
    }

    private func remember(_ group: BatchGroup, sequence: UInt64) {
        guard cache[sequence] == nil else { return }
        cache[sequence] = group
        cacheOrder.append(sequence)
        cachedBytes += group.bytes.readableBytes
        while cachedBytes > configuration.cacheBytes, let oldest = cacheOrder.popFirst() {
            cachedBytes -= cache.removeValue(forKey: oldest)?.bytes.readableBytes ?? 0
        }
    }

    private var nextSeq: UInt64 { entries.last.map { $0.lastSeq + 1 } ?? startSeq }

    /// The position in ``entries`` of the message holding `seq`, nil when none does.
    private func entryIndex(holding seq: UInt64) -> Int? {
        var low = 0
        var high = entries.count
        while low < high {
            let middle = (low + high) / 2
            if entries[middle].lastSeq < seq { low = middle + 1 } else { high = middle }
        }
        guard low < entries.count, entries[low].firstSeq <= seq else { return nil }
        return low
    }

    /// The group of ``entries``[`position`]: from memory, or read from the stream again.
    func group(at position: Int) async throws -> BatchGroup {
        let sequence = entries[position].sequence
        if let cached = cache[sequence] { return cached }
        guard let data = try await connection.message(stream: configuration.stream, sequence: sequence)?.data else {
            // Retention purged it on another node's pass: the log starts later now.
            if let info = try? await connection.streamInfo(configuration.stream), info.firstSequence > sequence {
                forget(before: info.firstSequence)
                throw LogError(.invalidArgument, "message \(sequence) of stream \(configuration.stream) was deleted by retention")
            }
            throw LogError(.corruption, "message \(sequence) of stream \(configuration.stream) is gone")
        }
        var buffer = ByteBufferAllocator().buffer(capacity: data.count)
        buffer.writeBytes(data)
        let group = try BatchGroup(validating: buffer)
        remember(group, sequence: sequence)
        return group
    }

    // MARK: Following the stream

    /// Reads the stream through the ordered consumer until the index holds message `sequence`.
    private func follow(through sequence: UInt64) async throws {
        while lastStreamSequence < sequence {
            try await followOnce(timeout: .seconds(1))
        }
    }

    /// Takes what the ordered consumer has (waiting up to `timeout` for the first message), when
    /// no one else is doing so.
    private func followOnce(timeout: Duration) async throws {
        guard !following else { return }
        following = true
        defer {
            following = false
            wakeHeadWaiters()
        }
        let messages = try await subscription.next(maximum: 512, timeout: timeout)
        for message in messages { ingest(sequence: message.sequence, data: message.data, fenceHeader: message.header) }
    }

    /// Takes in what other nodes wrote after the last message the index has: through the ordered
    /// consumer, which brings every message to this node anyway (a read by number would fetch
    /// it twice), and by number when the consumer brings nothing for 100 ms (it is being
    /// recreated after a leader change). Returns after some progress, or none to be had.
    private func readNewer() async throws {
        let before = lastStreamSequence
        let started = ContinuousClock.now
        while lastStreamSequence == before && ContinuousClock.now - started < .milliseconds(100) {
            guard try await followStep(timeout: .milliseconds(20)) else { break }
        }
        if lastStreamSequence == before { try await catchUp() }
    }

    /// Reads messages after the last one the index has, by sequence, until there is none: after
    /// a publish was fenced by another node's message.
    private func catchUp() async throws {
        while true {
            // The follower may ingest messages while this waits: the message read is the one
            // asked for, whatever the index holds when the answer comes.
            let sequence = lastStreamSequence + 1
            guard let message = try await connection.message(stream: configuration.stream, sequence: sequence, header: Self.fenceHeader) else {
                return
            }
            var buffer = ByteBufferAllocator().buffer(capacity: message.data.count)
            buffer.writeBytes(message.data)
            ingest(sequence: sequence, data: buffer, fenceHeader: message.header)
        }
    }

    // MARK: Appending

    public func append(_ payloads: [ByteBuffer], timestamp: Int64?, fence: AppendFence?) async throws -> AppendReceipt {
        guard !payloads.isEmpty else { throw LogError(.invalidArgument, "an append needs at least one record") }
        guard lifecycle == .open else { throw LogError(.closed, "the log is closed") }
        var bytes = 0
        for payload in payloads { bytes += payload.readableBytes + 12 }
        let overhead = (bytes / max(configuration.batchBytes, 1) + 1) * 96
        guard bytes + overhead <= maximumMessageBytes else {
            throw LogError(
                .invalidArgument,
                "an append of \(bytes) bytes is over what one JetStream message holds (\(maximumMessageBytes) bytes; the servers' max_payload)"
            )
        }
        guard pendingBytes + bytes <= configuration.maximumPendingBytes || pending.isEmpty else {
            statistics.appendsRefused += 1
            throw LogError(.overloaded, "\(pendingBytes) bytes are already waiting to be written")
        }
        pendingBytes += bytes
        return try await withCheckedThrowingContinuation { continuation in
            pending.append(PendingAppend(payloads: payloads, timestamp: timestamp, fence: fence, bytes: bytes, continuation: continuation))
            startWriting()
        }
    }

    private func startWriting() {
        guard !writing else { return }
        writing = true
        Task { await self.write() }
    }

    /// Publishes pending appends, one message at a time, until none is left.
    private func write() async {
        while !pending.isEmpty {
            let group = takeGroup()
            await commit(group)
        }
        writing = false
        let waiters = idleWaiters
        idleWaiters = []
        for waiter in waiters { waiter.resume() }
    }

    /// The next message's appends: a fenced append alone, or the unfenced ones that fit one
    /// message.
    private func takeGroup() -> [PendingAppend] {
        if let first = pending.first, first.fence != nil {
            pending.removeFirst()
            pendingBytes -= first.bytes
            return [first]
        }
        var group: [PendingAppend] = []
        var bytes = 0
        var kept: [PendingAppend] = []
        for append in pending {
            let overhead = ((bytes + append.bytes) / max(configuration.batchBytes, 1) + 1) * 96
            if append.fence == nil && (group.isEmpty || bytes + append.bytes + overhead <= maximumMessageBytes) {
                group.append(append)
                bytes += append.bytes
            } else {
                kept.append(append)
            }
        }
        pending = kept
        pendingBytes -= bytes
        return group
    }

    /// Publishes `group` as one message on top of the last message known, again on top of
    /// another node's message when one came first, until its message belongs to the log or the
    /// append fails (its fence fails, or JetStream does not answer).
    private func commit(_ group: [PendingAppend]) async {
        let fence = group.count == 1 ? group[0].fence : nil
        let deadline = ContinuousClock.now + configuration.unknownOutcomeLimit
        // Set after a publish refused as stale when no newer message could be read: the next
        // publish goes without `Nats-Expected-Last-Sequence` (the rule keeps the log whole
        // without it; see ``PublishOutcome/fenced(_:)``).
        var expectationRefused = false
        var refusedWithoutProgress = 0
        while true {
            if let fence, !holds(fence) {
                fail(group, LogError(.fenced, "another append under \(fence.key) came after seq \(fence.lastSeq)"))
                return
            }
            let firstSeq = nextSeq
            let stamp = group.reduce(lastTimestamp) { max($0, $1.timestamp ?? LogTime.now()) }
            let before = entries.last?.chain ?? startChain
            let (encoded, chains) = BatchGroup.encode(
                group.map { BatchGroup.Append(payloads: $0.payloads, timestamp: stamp) },
                firstSeq: firstSeq,
                chain: before,
                batchBytes: configuration.batchBytes
            )
            messageCounter += 1
            let messageID = messageIDPrefix + String(messageCounter)
            let fenceValue = fence?.headerValue
            let outcome = await publish(
                encoded,
                messageID: messageID,
                expected: expectationRefused ? nil : lastStreamSequence,
                fence: fenceValue,
                deadline: deadline
            )
            switch outcome {
            case .stored(let sequence):
                // The index through `sequence`, by the rule every node applies. Until it holds
                // `sequence`, whether this message belongs to the log is unknown: it is never
                // published again meanwhile (that could put its events in the log twice).
                while sequence > lastStreamSequence {
                    do {
                        if sequence == lastStreamSequence + 1 {
                            ingest(sequence: sequence, data: encoded.bytes, fenceHeader: fenceValue)
                        } else {
                            // Other nodes' messages came before it: read them (a sequence the
                            // stream skipped — nats-server 2.9 can leave one after a leader
                            // change — is gone past when the consumer brings the next).
                            guard ContinuousClock.now < deadline else {
                                throw LogError(.storageUnavailable, "message \(lastStreamSequence + 1) cannot be read")
                            }
                            try await readNewer()
                        }
                    } catch {
                        guard ContinuousClock.now < deadline else {
                            fail(
                                group,
                                LogError(
                                    .storageUnavailable,
                                    "JetStream stored the append as message \(sequence) but does not answer for the messages before it: \(error); the append's outcome is unknown",
                                    underlying: error
                                )
                            )
                            return
                        }
                        try? await Task.sleep(for: .milliseconds(100))
                    }
                }
                guard let position = entryIndex(holding: firstSeq), entries[position].sequence == sequence else {
                    // Stored, but another node's message came first: not part of the log.
                    // Encoded again on the new head (its fence checked again).
                    continue
                }
                var seq = firstSeq
                for (append, chain) in zip(group, chains) {
                    let receipt = AppendReceipt(firstSeq: seq, lastSeq: seq + UInt64(append.payloads.count) - 1, timestamp: stamp, chain: chain)
                    seq = receipt.lastSeq + 1
                    append.continuation.resume(returning: receipt)
                }
                statistics.appends += group.count
                statistics.recordsAppended += UInt64(encoded.recordCount)
                statistics.batchesWritten += 1
                statistics.writes += 1
                statistics.bytesWritten += Int64(encoded.bytes.readableBytes)
                failure = nil
                return
            case .fenced(let refusal):
                // Another node's message came first: read it, then try again on top of it.
                let before = lastStreamSequence
                do {
                    try await readNewer()
                } catch {
                    guard ContinuousClock.now < deadline else {
                        fail(group, LogError(.storageUnavailable, "JetStream does not answer: \(error)", underlying: error))
                        return
                    }
                }
                if lastStreamSequence == before {
                    // Refused as stale, yet no newer message can be read by number. Usually
                    // another node's message is still being replicated (the leader counts it,
                    // it is not stored yet): the follower brings it shortly. But nats-server 2.9
                    // can also keep refusing after a leader change (its idea of the last sequence
                    // is not the stream's last message), so after a few such refusals the next
                    // publish goes without the expectation: the header only saves storing a lost
                    // race; the rule decides what belongs to the log.
                    fencedWithoutProgress += 1
                    refusedWithoutProgress += 1
                    if refusedWithoutProgress >= 3 { expectationRefused = true }
                    if fencedWithoutProgress == 1 || fencedWithoutProgress % 100 == 0 {
                        logger.info(
                            "a publish was refused as stale but no newer message can be read yet",
                            metadata: ["last_sequence": "\(lastStreamSequence)", "times": "\(fencedWithoutProgress)", "refusal": "\(refusal)"]
                        )
                    }
                    guard ContinuousClock.now < deadline else {
                        fail(
                            group,
                            LogError(
                                .storageUnavailable,
                                "JetStream refuses the append as stale, and message \(lastStreamSequence + 1) cannot be read"
                            )
                        )
                        return
                    }
                    try? await Task.sleep(for: .milliseconds(20))
                }
            case .failed(let error):
                fail(group, error)
                return
            }
        }
    }

    enum PublishOutcome {
        case stored(UInt64)
        /// JetStream refused the message as stale (`Nats-Expected-Last-Sequence` did not hold);
        /// the error says what it took the last sequence to be.
        case fenced(JetStreamError)
        case failed(LogError)
    }

    /// Publishes one message, sending it again (same bytes, same id) while the outcome is
    /// unknown and `deadline` has not passed.
    private func publish(
        _ group: BatchGroup,
        messageID: String,
        expected: UInt64?,
        fence: String?,
        deadline: ContinuousClock.Instant
    ) async -> PublishOutcome {
        var attempt = 0
        while true {
            attempt += 1
            do {
                let acknowledgement = try await connection.publish(
                    subject: configuration.batchSubject,
                    data: group.bytes.readableBytesView,
                    messageID: messageID,
                    expectedLastSequence: expected,
                    headers: fence.map { [(Self.fenceHeader, $0)] } ?? [],
                    maxWait: configuration.publishTimeout
                )
                return .stored(acknowledgement.sequence)
            } catch let error as JetStreamError where error.code == .fenced {
                return .fenced(error)
            } catch let error as JetStreamError where error.isTransient {
                statistics.failures += 1
                failure = "JetStream does not answer: \(error.message)"
                if attempt == 1 { logger.warning("a publish got no answer; sending it again with the same id", metadata: ["error": "\(error)"]) }
                guard ContinuousClock.now < deadline else {
                    return .failed(
                        LogError(
                            .storageUnavailable,
                            "JetStream did not answer for \(configuration.unknownOutcomeLimit): \(error.message); the append's outcome is unknown",
                            underlying: error
                        )
                    )
                }
                try? await Task.sleep(for: .milliseconds(min(50 * attempt, 500)))
            } catch {
                return .failed(LogError(.storageUnavailable, "JetStream refused the append: \(error)", underlying: error))
            }
        }
    }

    private func fail(_ group: [PendingAppend], _ error: LogError) {
        statistics.appendsFailed += group.count
        for append in group { append.continuation.resume(throwing: error) }
    }

    // MARK: Reading

    public func read(from seq: UInt64, maxRecords: Int) async throws -> [LogRecord] {
        let start = max(seq, startSeq)
        guard let first = entryIndex(holding: start) else { return [] }
        var records: [LogRecord] = []
        var position = first
        while position < entries.count && records.count < max(maxRecords, 1) {
            let group = try await group(at: position)
            records += try group.records(max(start, group.firstSeq)...group.lastSeq)
            position += 1
        }
        return records
    }

    public func read(seqs: [UInt64]) async throws -> [LogRecord] {
        let wanted = Set(seqs).sorted()
        var records: [LogRecord] = []
        var i = 0
        while i < wanted.count {
            guard let position = entryIndex(holding: wanted[i]) else {
                i += 1
                continue
            }
            let entry = entries[position]
            var inGroup: Set<UInt64> = []
            while i < wanted.count && wanted[i] <= entry.lastSeq {
                inGroup.insert(wanted[i])
                i += 1
            }
            let group = try await group(at: position)
            records += try group.records(inGroup.min()!...inGroup.max()!).filter { inGroup.contains($0.seq) }
        }
        return records
    }

    public func waitForAppend(after seq: UInt64) async throws -> UInt64 {
        while true {
            if lastSeq > seq { return lastSeq }
            guard lifecycle == .open else { throw LogError(.closed, "the log is closed") }
            try Task.checkCancellation()
            if try await !followStep(timeout: .milliseconds(250)) { try await Task.sleep(for: .milliseconds(100)) }
        }
    }

    /// Reads the stream up to the last message JetStream holds now (asked of the stream's
    /// leader), by the log's rule: every append acknowledged on any node before the call is then
    /// in ``lastSeq``. Fails after ``Configuration/openTimeout`` without progress to that point.
    public func synchronize() async throws -> UInt64 {
        guard let info = try await connection.streamInfo(configuration.stream) else {
            throw LogError(.storageUnavailable, "stream \(configuration.stream) is gone")
        }
        if info.messages > 0 { forget(before: info.firstSequence) }
        let deadline = ContinuousClock.now + configuration.openTimeout
        while lastStreamSequence < info.lastSequence {
            guard lifecycle == .open else { throw LogError(.closed, "the log is closed") }
            guard ContinuousClock.now < deadline else {
                throw LogError(
                    .storageUnavailable,
                    "the stream could not be read up to message \(info.lastSequence) (read up to \(lastStreamSequence))"
                )
            }
            if try await !followStep(timeout: .milliseconds(250)) { try await Task.sleep(for: .milliseconds(100)) }
        }
        return lastSeq
    }

    /// One step of reading the stream: waits for the read under way, or reads through the ordered
    /// consumer for up to `timeout`. False when the consumer failed (it is being recreated, or the
    /// connection is down): the caller waits a little before the next step.
    private func followStep(timeout: Duration) async throws -> Bool {
        if following {
            try await waitForHeadChange()
            return true
        }
        do {
            try await followOnce(timeout: timeout)
            return true
        } catch {
            return false
        }
    }

    /// Waits until the head moves, the follower finishes a read, or the log closes.
    private func waitForHeadChange() async throws {
        nextWaiterID += 1
        let id = nextWaiterID
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                if Task.isCancelled {
                    continuation.resume(throwing: CancellationError())
                } else {
                    headWaiters[id] = continuation
                }
            }
        } onCancel: {
            Task { await self.cancelHeadWaiter(id) }
        }
    }

    private func cancelHeadWaiter(_ id: Int) {
        headWaiters.removeValue(forKey: id)?.resume(throwing: CancellationError())
    }

    private func wakeHeadWaiters() {
        let waiters = headWaiters
        headWaiters = [:]
        for waiter in waiters.values { waiter.resume() }
    }

    public func firstSeq(atOrAfter timestamp: Int64) async throws -> UInt64 {
        var low = 0
        var high = entries.count
        while low < high {
            let middle = (low + high) / 2
            if entries[middle].lastTimestamp < timestamp { low = middle + 1 } else { high = middle }
        }
        guard low < entries.count else { return nextSeq }
        return try await group(at: low).firstSeq(atOrAfter: timestamp) ?? entries[low].firstSeq
    }

    public var firstSeq: UInt64 { startSeq }

    public var lastSeq: UInt64 { nextSeq - 1 }

    public var chainHead: ChainHead {
        ChainHead(seq: lastSeq, chain: entries.last?.chain ?? startChain)
    }

    public func chainValue(after seq: UInt64) async throws -> ChainValue? {
        if seq == 0 { return .zero }
        if seq == startSeq - 1 { return startChain }
        guard let position = entryIndex(holding: seq) else { return nil }
        if entries[position].lastSeq == seq { return entries[position].chain }
        let before = position == 0 ? startChain : entries[position - 1].chain
        return try await group(at: position).chainValue(after: seq, before: before)
    }

    /// The log's state; its `failure` says why writes cannot be acknowledged now: a publish that
    /// got no answer, or a stream JetStream cannot answer for or that has no leader (no quorum:
    /// `/readyz` is 503). Asks JetStream, waiting up to 2 s.
    public func status() async -> LogStatus {
        let report = openedReport ?? recoveryReport
        var quorum: String?
        do {
            if let info = try await connection.streamInfo(configuration.stream, timeout: .seconds(2)) {
                if info.replicas > 1 && info.leader == nil { quorum = "stream \(configuration.stream) has no leader (no quorum)" }
                // Another node's retention pass may have purged messages this index still has.
                if info.messages > 0 { forget(before: info.firstSequence) }
            } else {
                quorum = "stream \(configuration.stream) is gone"
            }
        } catch {
            quorum = "JetStream does not answer for stream \(configuration.stream) (no quorum?): \(error)"
        }
        return LogStatus(
            firstSeq: startSeq,
            lastSeq: lastSeq,
            segments: [],
            failure: quorum ?? failure
                ?? (foreignMessages > 0 ? "\(foreignMessages) messages of the stream are not batch groups continuing the log" : nil),
            statistics: statistics,
            recovery: report,
            losses: []
        )
    }

    /// The key-value bucket `<stream>_<suffix>`, replicated like the stream (created when
    /// missing). Waits up to ``Configuration/openTimeout`` for JetStream to answer: a node
    /// started during a leader election still opens.
    public nonisolated func keyValueBucket(_ suffix: String) async throws -> KeyValueBucket {
        try await Self.retryingUntil(ContinuousClock.now + configuration.openTimeout) {
            try await connection.keyValueBucket(configuration.stream + "_" + suffix, replicas: configuration.replicas)
        }
    }

    /// The stream as JetStream reports it now (replicas, leader, messages, bytes); nil when it
    /// does not answer.
    public func streamInfo() async -> JetStreamConnection.StreamInfo? {
        try? await connection.streamInfo(configuration.stream)
    }

    public func close() async {
        guard lifecycle == .open else { return }
        lifecycle = .closing
        if writing {
            await withCheckedContinuation { idleWaiters.append($0) }
        }
        lifecycle = .closed
        let waiters = headWaiters
        headWaiters = [:]
        for waiter in waiters.values { waiter.resume(throwing: LogError(.closed, "the log is closed")) }
        await subscription.close()
        await connection.close()
        try? await threads.shutdownGracefully()
    }
}

extension AppendFence {
    /// The fence as its message header carries it: `SEQ KEY`.
    var headerValue: String { "\(lastSeq) \(key)" }

    /// The fence a message header carries; nil when it does not parse.
    init?(header: String) {
        guard let space = header.firstIndex(of: " "), let seq = UInt64(header[..<space]) else { return nil }
        self.init(key: String(header[header.index(after: space)...]), lastSeq: seq)
    }
}
