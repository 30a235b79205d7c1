import Logging
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The durable, append-only segment log: Custody's record of truth. It knows nothing of what the
/// records mean.
///
/// Guarantees:
/// - **Acknowledged means durable.** ``append(_:timestamp:)`` returns only after the records are
///   written and, under ``FsyncPolicy/always``, after the `fdatasync` that covers them.
///   Concurrent appends are gathered into one write and one fsync (group commit).
/// - **Seqs** start at 1 and increase by one per record with no gaps; the seqs of one append are
///   consecutive.
/// - **Readers see only acknowledged records**, from any seq, concurrently with appends.
/// - **A failed write or fsync** is never retried on the same bytes: the segment is cut back to
///   its last acknowledged batch and sealed, the affected appends fail with
///   ``LogError/Code/storageUnavailable``, and appends keep failing until a new segment can be
///   started (tried again on each append, so ingest resumes by itself once the disk recovers).
///
/// State lives in the actor; every blocking file operation runs on a `NIOThreadPool`, so the
/// actor stays free to gather the next group while the previous one is being written.
public actor SegmentLog: EventLog {
    public nonisolated let directory: String
    public nonisolated let configuration: LogConfiguration
    /// What opening the log found and did.
    public nonisolated let recoveryReport: RecoveryReport
    /// Every range recorded as lost (`quarantine.json`), by this open's repair or earlier ones.
    public nonisolated let recordedLosses: [QuarantineRecord]
    nonisolated let fileSystem: any LogFileSystem
    nonisolated let threadPool: NIOThreadPool
    /// The writers' own threads: every write, fsync, segment roll and recovery point runs here,
    /// and a group's hash chain beside its compression, so that readers (projector, cache, live hub, API reads) on ``threadPool`` can never make an
    /// append wait for a thread. Shared by the logs of a process (one, in a server) and never
    /// shut down, like NIO's singleton pool.
    nonisolated var writerPool: NIOThreadPool { Self.writerThreads }
    static let writerThreads: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: 2)
        pool.start()
        return pool
    }()
    nonisolated let logger: Logger

    struct ActiveSegment {
        var baseSeq: UInt64
        var index: SegmentIndex
        var file: any LogFile
        /// Bytes acknowledged (written, and synchronized under `always`).
        var length: Int64 { index.coveredLength }
        var synchronizedLength: Int64
        /// When the segment was started, on ``LogConfiguration/clock``.
        var openedAt: Duration
        /// The segment's dictionary, once its `.dict` file is durable: its batches are compressed
        /// against it from then on.
        var dictionary: LZ4Dictionary? = nil
        /// The dictionary prepared for LZ4HC, made when the log is first quiet in this segment.
        var highCompression: LZ4HighCompressionDictionary? = nil
        /// The segment gets no dictionary (its file could not be written, or one found at open
        /// is damaged): never one with another content under the same name.
        var dictionaryRefused = false
        var path: String { SegmentName.segment(baseSeq) }
    }

    struct Waiter {
        var count: Int
        var timestamp: Int64
        /// The key of the append's fence, if it had one.
        var fenceKey: String?
        var continuation: CheckedContinuation<AppendReceipt, any Error>
    }

    /// Appends gathered for the next group commit.
    struct PendingGroup {
        var batches: [FramedRecords] = []
        var waiters: [Waiter] = []
        var bytes = 0
        var isEmpty: Bool { waiters.isEmpty }

        /// The record counts, from the group's start, at which each append's records end.
        var waiterEnds: [Int] {
            var ends: [Int] = []
            ends.reserveCapacity(waiters.count)
            var records = 0
            for waiter in waiters {
                records += waiter.count
                ends.append(records)
            }
            return ends
        }
    }

    enum Lifecycle {
        case open
        case closing
        case closed
    }

    private var sealed: [SealedSegment]
    /// Where retention left the log's start (`retention.json`), nil when it never deleted.
    var retainedStart: RetainedStart?
    private var active: ActiveSegment
    private let lock: any LogFile
    /// The seq the next record gets; `endSeq - 1` is the last acknowledged one.
    private var endSeq: UInt64
    private var lastTimestamp: Int64
    /// The hash chain's value after record `chainSeq`, the last record the log holds
    /// (``ChainValue/zero`` before the chain's first record). `chainSeq` is `endSeq - 1` but after
    /// a repair that recorded the loss of the newest records.
    private var chain: ChainValue
    private var chainSeq: UInt64
    private var pending = PendingGroup()
    /// The last ``LZ4Dictionary/maximumBytes`` of framed records written: a new segment's
    /// dictionary.
    private var recentRecords: RecentBytes
    /// How many bytes the log wrote in the last second or so: quiet or busy.
    private var writeRate = WriteRate()
    /// The segments' dictionaries, for readers (and the writer's own, once made).
    nonisolated let dictionaries: SegmentDictionaries
    private var flushing = false
    private var failure: LogError?
    private var lifecycle = Lifecycle.open
    private var idleWaiters: [CheckedContinuation<Void, Never>] = []
    private var headWaiters: [Int: (after: UInt64, continuation: CheckedContinuation<UInt64, any Error>)] = [:]
    private var nextHeadWaiterID = 0
    private var bytesSinceRecoveryPoint: Int64 = 0
    private var lastSynchronization: Duration
    /// A timer will make a synchronization due (fsync `interval`).
    private var synchronizationScheduled = false
    /// The interval has passed since unsynchronized bytes were written: the flush loop syncs.
    private var synchronizationDue = false
    private var statistics = LogStatistics()
    /// Fences (``AppendFence``): the seqs of the last append made under each key since the log
    /// opened (forgotten all at once past ``fenceKeyLimit``), and the keys with an append not yet
    /// committed.
    private var fenceHeads: [String: ClosedRange<UInt64>] = [:]
    private var pendingFenceKeys: Set<String> = []
    static let fenceKeyLimit = 100_000

    /// What opening finds beside recovery: the chain's head and the active segment's dictionary.
    struct OpenedHead: Sendable {
        var head: ChainHead
        var activeDictionary: SegmentDictionaries.Stored
    }

    init(
        directory: String,
        configuration: LogConfiguration,
        fileSystem: any LogFileSystem,
        threadPool: NIOThreadPool,
        logger: Logger,
        recovered: LogRecovery.Recovered,
        chain: OpenedHead
    ) {
        self.chain = chain.head.chain
        self.chainSeq = chain.head.seq
        self.directory = directory
        self.configuration = configuration
        self.fileSystem = fileSystem
        self.threadPool = threadPool
        self.logger = logger
        self.recoveryReport = recovered.report
        self.recordedLosses = recovered.losses
        self.sealed = recovered.sealed
        self.retainedStart = RetainedStart.read(in: directory, fileSystem: fileSystem)
        self.lock = recovered.lock
        self.dictionaries = SegmentDictionaries(fileSystem: fileSystem)
        self.recentRecords = RecentBytes(capacity: max(1, min(configuration.dictionaryBytes, LZ4Dictionary.maximumBytes)))
        self.active = ActiveSegment(
            baseSeq: recovered.activeBase,
            index: recovered.activeIndex,
            file: recovered.activeFile,
            synchronizedLength: recovered.activeIndex.coveredLength,
            openedAt: configuration.clock.now()
        )
        switch chain.activeDictionary {
        case .valid(let dictionary):
            active.dictionary = dictionary
            dictionaries.remember(dictionary, forSegmentAt: joinPath(directory, active.path))
        case .damaged: active.dictionaryRefused = true
        case .absent: break
        }
        self.lastSynchronization = configuration.clock.now()
        self.endSeq = recovered.activeIndex.endSeq
        self.lastTimestamp = recovered.lastTimestamp
    }

    /// Opens (creating if needed) the log in `directory`, recovering it as ``LogRecovery``
    /// describes: a torn tail is cut and reported; damage before the tail makes the open fail
    /// with ``LogError/Code/corruption``, and a log that ends before its recovery point or
    /// before `acknowledged` with ``LogError/Code/dataLoss``, unless `damagePolicy` is
    /// ``DamagePolicy/quarantine`` (then the loss is recorded and seqs go on after it).
    public static func open(
        directory: String,
        configuration: LogConfiguration = LogConfiguration(),
        damagePolicy: DamagePolicy = .refuse,
        acknowledged: AcknowledgedMark? = nil,
        fileSystem: any LogFileSystem = PosixFileSystem(),
        threadPool: NIOThreadPool = .singleton,
        logger: Logger = Logger(label: "custody.log")
    ) async throws -> SegmentLog {
        let recovered = try await threadPool.runIfActive {
            var recovery = LogRecovery(
                directory: directory,
                fileSystem: fileSystem,
                configuration: configuration,
                damagePolicy: damagePolicy,
                acknowledged: acknowledged
            )
            return try recovery.run()
        }
        let report = recovered.report
        for cut in report.tailCuts {
            logger.warning(
                "cut a torn tail from the log",
                metadata: [
                    "segment": "\(cut.segment)", "offset": "\(cut.offset)", "bytes_cut": "\(cut.bytesCut)", "defect": "\(cut.defect)",
                    "dropped_seqs": "\(cut.droppedSeqs)", "below_recovery_point": "\(cut.reachedAcknowledgedData)",
                ]
            )
        }
        for entry in report.quarantined {
            logger.error(
                "quarantined a damaged range of the log",
                metadata: [
                    "segment": "\(entry.segment)", "offset": "\(entry.offset)", "length": "\(entry.length)",
                    "side_file": "\(entry.sideFile ?? "-")", "lost_seqs": "\(entry.firstLostSeq)...\(entry.lastLostSeq)",
                    "defect": "\(entry.defect)",
                ]
            )
        }
        logger.info(
            "opened the log",
            metadata: [
                "directory": "\(directory)", "segments": "\(report.segments)", "end_seq": "\(report.endSeq)",
                "bytes_verified": "\(report.bytesVerified)", "indexes_rebuilt": "\(report.indexesRebuilt.count)",
                "seconds": "\(report.durationSeconds)",
            ]
        )
        let chain = try await threadPool.runIfActive {
            let segments = recovered.segmentSpans
            // The last record the log holds (a repair may have recorded the loss of later seqs).
            let lastHeld = segments.last(where: { $0.index.coveredLength > 0 }).map { $0.index.endSeq - 1 } ?? 0
            let starts = RetainedStart.read(in: directory, fileSystem: fileSystem)?.starts ?? [:]
            let value = try ChainLookup(directory: directory, fileSystem: fileSystem, segments: segments, starts: starts)
                .value(after: lastHeld)
            // The active segment's dictionary, when it has one: its directory entry synchronized
            // again, as a dictionary found after a crash may be one whose rename was not.
            let dictionary = SegmentDictionaries.load(
                forSegmentAt: joinPath(directory, SegmentName.segment(recovered.activeBase)),
                fileSystem: fileSystem
            )
            if case .valid = dictionary { try fileSystem.synchronizeDirectory(at: directory) }
            return OpenedHead(head: ChainHead(seq: lastHeld, chain: value ?? starts[lastHeld + 1] ?? .zero), activeDictionary: dictionary)
        }
        return SegmentLog(
            directory: directory,
            configuration: configuration,
            fileSystem: fileSystem,
            threadPool: threadPool,
            logger: logger,
            recovered: recovered,
            chain: chain
        )
    }

    // MARK: Appending

    /// Appends `payloads` as consecutive records, all stamped with `timestamp` (nanoseconds since
    /// the Unix epoch; now when nil; never earlier than the log's last timestamp). Returns once
    /// they are durable under the fsync policy. Once called, the append is not cancellable: it
    /// either becomes durable or fails.
    public nonisolated func append(_ payloads: [ByteBuffer], timestamp: Int64? = nil) async throws -> AppendReceipt {
        try await append(payloads, timestamp: timestamp, fence: nil)
    }

    /// ``append(_:timestamp:)`` under `fence` (``AppendFence``). The segment log is the only
    /// writer of its directory, so a fence can only fail against appends made since it opened: it
    /// fails when another append under the key is still being written, or when the last one
    /// committed under the key does not hold `fence.lastSeq`; a key not appended under since the
    /// log opened (or since it last forgot its keys, past 100,000 of them) passes, the caller
    /// having read its expectation from projections that hold everything before.
    public nonisolated func append(_ payloads: [ByteBuffer], timestamp: Int64?, fence: AppendFence?) async throws -> AppendReceipt {
        guard !payloads.isEmpty else { throw LogError(.invalidArgument, "an append needs at least one record") }
        var bytes = 0
        for payload in payloads {
            guard payload.readableBytes <= RecordFrame.maximumPayloadLength else {
                throw LogError(
                    .invalidArgument,
                    "a record of \(payload.readableBytes) bytes is over the limit of \(RecordFrame.maximumPayloadLength)"
                )
            }
            bytes += payload.readableBytes + RecordFrame.headerSize
        }
        return try await enqueue(payloads, bytes: bytes, timestamp: timestamp ?? configuration.wallClock(), fence: fence)
    }

    /// Adds an append's records (framed with `timestamp`) to the pending group and waits for its
    /// commit.
    private func enqueue(_ payloads: [ByteBuffer], bytes: Int, timestamp: Int64, fence: AppendFence?) async throws -> AppendReceipt {
        guard lifecycle == .open else { throw LogError(.closed, "the log is closed") }
        guard pending.bytes + bytes <= configuration.maximumPendingBytes || pending.isEmpty else {
            statistics.appendsRefused += 1
            throw LogError(.overloaded, "\(pending.bytes) bytes are already waiting to be written")
        }
        if let fence {
            if pendingFenceKeys.contains(fence.key) {
                throw LogError(.fenced, "another append under \(fence.key) is being written")
            }
            if let head = fenceHeads[fence.key], !head.contains(fence.lastSeq) {
                throw LogError(.fenced, "the last append under \(fence.key) holds seqs \(head), not \(fence.lastSeq)")
            }
            pendingFenceKeys.insert(fence.key)
        }
        let stamp = max(timestamp, lastTimestamp)
        lastTimestamp = stamp
        let limit = configuration.effectiveBatchBytes
        for payload in payloads {
            if pending.batches.isEmpty || pending.batches[pending.batches.count - 1].bytes.readableBytes >= limit {
                pending.batches.append(FramedRecords(capacity: min(limit, max(bytes, 4096))))
            }
            pending.batches[pending.batches.count - 1].append(payload, timestamp: stamp)
        }
        pending.bytes += bytes
        return try await withCheckedThrowingContinuation { continuation in
            pending.waiters.append(Waiter(count: payloads.count, timestamp: stamp, fenceKey: fence?.key, continuation: continuation))
            startFlushing()
        }
    }

    /// Appends one record.
    public nonisolated func append(_ payload: ByteBuffer, timestamp: Int64? = nil) async throws -> AppendReceipt {
        try await append([payload], timestamp: timestamp)
    }

    /// Groups up to this size are chained and compressed on one thread, not two.
    static let smallGroupBytes: Int64 = 64 << 10

    private func startFlushing() {
        guard !flushing else { return }
        flushing = true
        Task { await self.flush() }
    }

    /// Commits pending groups, one write (and fsync) each, until none is left.
    private func flush() async {
        while true {
            if !pending.isEmpty {
                let group = pending
                pending = PendingGroup()
                await commit(group)
            } else if synchronizationDue {
                synchronizationDue = false
                if active.synchronizedLength < active.length && failure == nil { await synchronizeActive() }
            } else {
                break
            }
        }
        flushing = false
        let waiters = idleWaiters
        idleWaiters = []
        for waiter in waiters { waiter.resume() }
    }

    private func commit(_ group: PendingGroup) async {
        if failure != nil {
            do {
                try await startSegmentAfterFailure()
            } catch {
                fail(group, with: failure ?? LogError.storageUnavailable("cannot start a new segment", error))
                return
            }
        }
        let groupBytes = Int64(group.bytes + group.batches.count * BatchHeader.size)
        if active.length > 0
            && (active.length + groupBytes > configuration.segmentBytes
                || configuration.segmentAge.map { configuration.clock.now() - active.openedAt >= $0 } ?? false)
        {
            do {
                try await roll()
            } catch {
                enterFailure(LogError.storageUnavailable("cannot start a new segment", error))
                fail(group, with: failure!)
                return
            }
        }

        if configuration.compressionDictionary && active.dictionary == nil && !active.dictionaryRefused && recentRecords.isFull {
            await makeDictionary()
        }
        let compression: BatchCompression
        let now = configuration.clock.now()
        if configuration.compressionDictionary, let dictionary = active.dictionary {
            if groupBytes <= Self.smallGroupBytes && configuration.highCompressionBelowBytesPerSecond > 0
                && writeRate.isQuiet(below: configuration.highCompressionBelowBytesPerSecond, at: now)
            {
                if active.highCompression == nil { active.highCompression = LZ4HighCompressionDictionary(dictionary) }
                compression = active.highCompression.map { .highCompression($0) } ?? .dictionary(dictionary)
            } else {
                compression = .dictionary(dictionary)
            }
        } else {
            compression = .lz4
        }
        writeRate.note(groupBytes, at: now)
        let firstSeq = endSeq
        let file = active.file
        let offset = active.length
        let policy = configuration.fsync
        let synchronize: Bool
        switch policy {
        case .always: synchronize = true
        case .never: synchronize = false
        case .interval(let ms): synchronize = configuration.clock.now() - lastSynchronization >= .milliseconds(ms)
        }
        let batches = group.batches
        let chained = configuration.hashChain
        // Where each waiter's records end, counted in records of the group: its receipt's chain
        // value is the one after that record.
        let waiterEnds = group.waiterEnds
        let capacity = Int(groupBytes) + batches.count * ChainValue.byteCount + 64
        let acknowledgesBeforeSync = policy.acknowledgesBeforeSync
        // Seals the group's compressed batches with their chain values, writes them and
        // synchronizes.
        let write: @Sendable (inout CompressedGroup, GroupChain?) throws -> WrittenGroup = { group, chain in
            let sealed = group.seal(
                flags: { position, count in
                    (position == count - 1 ? BatchHeader.flagEndOfWrite : 0) | (acknowledgesBeforeSync ? BatchHeader.flagDeferredSync : 0)
                },
                chain: chain
            )
            let headers = sealed.map { ($0.header, offset + Int64($0.offset)) }
            try group.output.withUnsafeReadableBytes { try file.write($0, at: offset) }
            var syncNanoseconds: Int64 = 0
            if synchronize {
                let started = ContinuousClock.now
                try file.synchronize()
                let elapsed = (ContinuousClock.now - started).components
                syncNanoseconds = elapsed.seconds * 1_000_000_000 + elapsed.attoseconds / 1_000_000_000
            }
            return WrittenGroup(headers: headers, receiptChains: chain?.afterWaiter ?? [], syncNanoseconds: syncNanoseconds)
        }
        let result: Result<WrittenGroup, any Error>
        if chained && groupBytes <= Self.smallGroupBytes {
            // A small group (one-event appends at a low concurrency) is compressed, chained,
            // written and synchronized on one writer thread: two hand-offs between threads
            // would cost more than the parallel work saves (docs/benchmarks.md P1).
            let start = chain
            result = await runWriterIO {
                var compressed = CompressedGroup(batches, firstSeq: firstSeq, chained: true, compression: compression, capacity: capacity)
                let groupChain = GroupChain(batches: batches, firstSeq: firstSeq, start: start, waiterEnds: waiterEnds)
                return try write(&compressed, groupChain)
            }
        } else if chained {
            // The group is compressed on one writer thread while its chain is computed on the
            // other (the chain is serial, and as costly as the compression); then sealed and
            // written.
            async let compressed = runWriterIO {
                Handoff(CompressedGroup(batches, firstSeq: firstSeq, chained: true, compression: compression, capacity: capacity))
            }
            let start = chain
            let computed = await runWriterIO { GroupChain(batches: batches, firstSeq: firstSeq, start: start, waiterEnds: waiterEnds) }
            switch (await compressed, computed) {
            case (.success(let compressed), .success(let groupChain)):
                result = await runWriterIO {
                    var group = compressed.take()
                    return try write(&group, groupChain)
                }
            case (.failure(let error), _), (_, .failure(let error)):
                result = .failure(error)
            }
        } else {
            result = await runWriterIO {
                var group = CompressedGroup(batches, firstSeq: firstSeq, chained: false, compression: compression, capacity: capacity)
                return try write(&group, nil)
            }
        }
        switch result {
        case .success(let written):
            let (headers, chains, syncNanoseconds) = (written.headers, written.receiptChains, written.syncNanoseconds)
            for (header, at) in headers {
                active.index.noteBatch(header, at: at, interval: configuration.indexIntervalBytes)
                statistics.uncompressedBytes += Int64(header.uncompressedLength)
            }
            let bytesWritten = active.length - offset
            statistics.bytesWritten += bytesWritten
            statistics.batchesWritten += headers.count
            statistics.writes += 1
            bytesSinceRecoveryPoint += bytesWritten
            if synchronize {
                configuration.onSynchronization?(.nanoseconds(syncNanoseconds))
                statistics.synchronizations += 1
                statistics.synchronizationNanoseconds += syncNanoseconds
                statistics.longestSynchronizationNanoseconds = max(statistics.longestSynchronizationNanoseconds, syncNanoseconds)
                active.synchronizedLength = active.length
                lastSynchronization = configuration.clock.now()
            } else if case .interval(let ms) = policy, !synchronizationScheduled {
                synchronizationScheduled = true
                let clock = configuration.clock
                let deadline = clock.now() + .milliseconds(ms)
                Task {
                    try? await clock.sleep(until: deadline)
                    guard self.lifecycle == .open else { return }
                    self.synchronizationScheduled = false
                    self.synchronizationDue = true
                    self.startFlushing()
                }
            }
            endSeq = active.index.endSeq
            statistics.recordsAppended += endSeq - firstSeq
            if configuration.compressionDictionary {
                // Only the tail can end up in the dictionary.
                var kept = 0
                var first = batches.endIndex
                while first > batches.startIndex && kept < recentRecords.capacity {
                    first -= 1
                    kept += batches[first].bytes.readableBytes
                }
                for batch in batches[first...] { recentRecords.append(batch.bytes) }
            }
            if let last = chains.last {
                chain = last
                chainSeq = endSeq - 1
            }
            var seq = firstSeq
            for (position, waiter) in group.waiters.enumerated() {
                let receipt = AppendReceipt(
                    firstSeq: seq,
                    lastSeq: seq + UInt64(waiter.count) - 1,
                    timestamp: waiter.timestamp,
                    chain: chains.isEmpty ? nil : chains[position]
                )
                seq += UInt64(waiter.count)
                if let key = waiter.fenceKey {
                    if fenceHeads.count >= Self.fenceKeyLimit { fenceHeads.removeAll() }
                    fenceHeads[key] = receipt.seqs
                    pendingFenceKeys.remove(key)
                }
                waiter.continuation.resume(returning: receipt)
            }
            statistics.appends += group.waiters.count
            wakeHeadWaiters()
            if bytesSinceRecoveryPoint >= configuration.recoveryPointIntervalBytes && active.synchronizedLength == active.length {
                await saveRecoveryPoint()
            }
        case .failure(let error):
            enterFailure(LogError.storageUnavailable("writing to \(SegmentName.segment(active.baseSeq)) failed", error))
            fail(group, with: failure!)
        }
    }

    private func fail(_ group: PendingGroup, with error: LogError) {
        statistics.appendsFailed += group.waiters.count
        for waiter in group.waiters {
            if let key = waiter.fenceKey { pendingFenceKeys.remove(key) }
            waiter.continuation.resume(throwing: error)
        }
    }

    /// Records an I/O failure: from now on appends fail until a new segment is started.
    private func enterFailure(_ error: LogError) {
        if failure == nil {
            logger.error("the log cannot be written; the segment is sealed", metadata: ["error": "\(error.message)"])
        }
        failure = error
        statistics.failures += 1
    }

    /// After a failure: cuts the failed segment back to what was acknowledged, makes that durable,
    /// seals it, and starts a new segment. Throws (and the log stays failed) if any step fails.
    private func startSegmentAfterFailure() async throws {
        let old = active
        let base = endSeq
        let directory = directory
        let fileSystem = fileSystem
        let newFile: any LogFile = try await runWriterIO {
            try old.file.truncate(to: old.length)
            try old.file.synchronize()
            if old.length == 0 {
                try old.file.close()
                try fileSystem.removeFile(at: joinPath(directory, SegmentName.segment(old.baseSeq)))
            } else {
                try writeSegmentIndexFiles(old.index, base: old.baseSeq, directory: directory, fileSystem: fileSystem)
            }
            let file = try Self.createSegmentFile(base, directory: directory, fileSystem: fileSystem)
            try fileSystem.synchronizeDirectory(at: directory)
            if old.length > 0 { try? old.file.close() }
            return file
        }.get()
        if old.length > 0 { sealed.append(SealedSegment(baseSeq: old.baseSeq, index: old.index)) }
        dictionaries.forget(segmentAt: joinPath(directory, SegmentName.segment(base)))
        active = ActiveSegment(
            baseSeq: base,
            index: SegmentIndex(baseSeq: base),
            file: newFile,
            synchronizedLength: 0,
            openedAt: configuration.clock.now()
        )
        logger.notice("the log is writable again", metadata: ["segment": "\(SegmentName.segment(base))"])
        failure = nil
        await saveRecoveryPoint()
    }

    /// Makes the active segment's dictionary of the records written last, durable before any
    /// batch is compressed against it. A failure costs only the compression: the segment then
    /// has none, and the next segment tries again.
    private func makeDictionary() async {
        guard let dictionary = LZ4Dictionary.of(recentRecords.bytes) else { return }
        let (base, directory, fileSystem) = (active.baseSeq, directory, fileSystem)
        let result = await runWriterIO {
            try SegmentDictionaries.write(dictionary, segment: base, directory: directory, fileSystem: fileSystem)
        }
        switch result {
        case .success:
            active.dictionary = dictionary
            dictionaries.remember(dictionary, forSegmentAt: joinPath(directory, active.path))
            statistics.dictionariesWritten += 1
        case .failure(let error):
            active.dictionaryRefused = true
            logger.warning(
                "cannot write a segment's compression dictionary; its batches are compressed without",
                metadata: ["segment": "\(active.path)", "error": "\(error)"]
            )
        }
    }

    /// Seals the active segment (synchronized, index files written) and starts the next one.
    private func roll() async throws {
        let old = active
        let base = endSeq
        let directory = directory
        let fileSystem = fileSystem
        let newFile: any LogFile = try await runWriterIO {
            if old.synchronizedLength < old.length { try old.file.synchronize() }
            try writeSegmentIndexFiles(old.index, base: old.baseSeq, directory: directory, fileSystem: fileSystem)
            let file = try Self.createSegmentFile(base, directory: directory, fileSystem: fileSystem)
            try fileSystem.synchronizeDirectory(at: directory)
            try? old.file.close()
            return file
        }.get()
        sealed.append(SealedSegment(baseSeq: old.baseSeq, index: old.index))
        dictionaries.forget(segmentAt: joinPath(directory, SegmentName.segment(base)))
        active = ActiveSegment(
            baseSeq: base,
            index: SegmentIndex(baseSeq: base),
            file: newFile,
            synchronizedLength: 0,
            openedAt: configuration.clock.now()
        )
        statistics.segmentsRolled += 1
        await saveRecoveryPoint()
    }

    /// Creates an empty segment file. A file of that name can only be left over from a start that
    /// failed half-way (no record has a seq at or after `base` yet); it must be empty.
    static func createSegmentFile(_ base: UInt64, directory: String, fileSystem: any LogFileSystem) throws -> any LogFile {
        let path = joinPath(directory, SegmentName.segment(base))
        // A dictionary of that name is left over too: the new segment makes its own.
        let dictionaryPath = joinPath(directory, SegmentName.dictionary(base))
        if fileSystem.fileExists(at: dictionaryPath) { try fileSystem.removeFile(at: dictionaryPath) }
        if fileSystem.fileExists(at: path) {
            let existing = try fileSystem.openFile(at: path, mode: .readOnly)
            let size = try existing.size()
            try existing.close()
            guard size == 0 else { throw LogError(.corruption, "\(path) already holds \(size) bytes at seqs not yet written") }
            try fileSystem.removeFile(at: path)
        }
        return try fileSystem.openFile(at: path, mode: .createNew)
    }

    /// Saves a recovery point at the end of the active segment, which must be synchronized.
    /// A failure here loses nothing: recovery then scans more.
    private func saveRecoveryPoint() async {
        guard active.synchronizedLength == active.length else { return }
        let point = RecoveryPoint(segmentBase: active.baseSeq, offset: active.length, endSeq: endSeq, lastTimestamp: lastTimestamp)
        let directory = directory
        let fileSystem = fileSystem
        let result = await runWriterIO {
            try replaceFileAtomically(point.encode(), named: SegmentName.recoveryPoint, in: directory, fileSystem: fileSystem)
            try fileSystem.synchronizeDirectory(at: directory)
        }
        if case .failure(let error) = result {
            logger.warning("cannot save a recovery point", metadata: ["error": "\(error)"])
        } else {
            bytesSinceRecoveryPoint = 0
        }
    }

    private func synchronizeActive() async {
        let file = active.file
        let length = active.length
        let started = ContinuousClock.now
        switch await runWriterIO({ try file.synchronize() }) {
        case .success:
            configuration.onSynchronization?(ContinuousClock.now - started)
            statistics.synchronizations += 1
            active.synchronizedLength = max(active.synchronizedLength, length)
            lastSynchronization = configuration.clock.now()
        case .failure(let error):
            enterFailure(LogError.storageUnavailable("synchronizing \(SegmentName.segment(active.baseSeq)) failed", error))
        }
    }

    // MARK: Closing

    /// Finishes pending appends, synchronizes, saves a recovery point and releases the directory.
    /// Appends after this fail with ``LogError/Code/closed``.
    public func close() async {
        guard lifecycle == .open else { return }
        lifecycle = .closing
        while flushing {
            await withCheckedContinuation { idleWaiters.append($0) }
        }
        if failure == nil && active.synchronizedLength < active.length {
            await synchronizeActive()
        }
        if failure == nil { await saveRecoveryPoint() }
        let file = active.file
        let lock = lock
        _ = await runWriterIO {
            try? file.close()
            try? lock.close()
        }
        lifecycle = .closed
        let waiters = headWaiters
        headWaiters = [:]
        for (_, waiter) in waiters { waiter.continuation.resume(throwing: LogError(.closed, "the log is closed")) }
    }

    // MARK: State for readers

    var sealedSegments: [SealedSegment] { sealed }

    /// Takes the oldest sealed segment out of the log's state (``deleteSegments(before:)``).
    func forgetOldestSealedSegment() -> SealedSegment? {
        sealed.isEmpty ? nil : sealed.removeFirst()
    }
    var activeSegment: ActiveSegment { active }
    var nextSeq: UInt64 { endSeq }

    /// The sealed segments, for ``backupPoint()``.
    var sealedSegmentsForBackup: [SealedSegment] { sealed }
    /// The active segment's base seq and its length up to the acknowledged head (the actor
    /// advances the two together), for ``backupPoint()``.
    var activeSegmentForBackup: (base: UInt64, length: Int64) { (active.baseSeq, active.length) }
    var chainValue: ChainValue { chain }
    var chainValueSeq: UInt64 { chainSeq }
    var isOpen: Bool { lifecycle == .open }
    var currentFailure: LogError? { failure }
    var currentStatistics: LogStatistics { statistics }

    func registerHeadWaiterID() -> Int {
        nextHeadWaiterID += 1
        return nextHeadWaiterID
    }

    func addHeadWaiter(id: Int, after seq: UInt64, continuation: CheckedContinuation<UInt64, any Error>) {
        if endSeq - 1 > seq {
            continuation.resume(returning: endSeq - 1)
        } else if lifecycle != .open {
            continuation.resume(throwing: LogError(.closed, "the log is closed"))
        } else {
            headWaiters[id] = (seq, continuation)
        }
    }

    func cancelHeadWaiter(_ id: Int) {
        headWaiters.removeValue(forKey: id)?.continuation.resume(throwing: CancellationError())
    }

    private func wakeHeadWaiters() {
        let head = endSeq - 1
        for (id, waiter) in headWaiters where waiter.after < head {
            headWaiters.removeValue(forKey: id)
            waiter.continuation.resume(returning: head)
        }
    }

    // MARK: Helpers

    /// Runs the writer's blocking file work on its own thread.
    nonisolated func runWriterIO<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async -> Result<T, any Error> {
        do {
            return .success(try await writerPool.runIfActive(body))
        } catch {
            return .failure(error)
        }
    }

    /// Runs blocking file work (reads) on the shared thread pool.
    nonisolated func runIO<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async -> Result<T, any Error> {
        do {
            return .success(try await threadPool.runIfActive(body))
        } catch {
            return .failure(error)
        }
    }

    /// Nanoseconds since the Unix epoch, from the real-time clock (``LogTime/now()``).
    public static func now() -> Int64 { LogTime.now() }
}

/// Counters of what the log has done since it opened.
public struct LogStatistics: Sendable, Hashable, Codable {
    public init() {}

    public var appends = 0
    public var appendsFailed = 0
    public var appendsRefused = 0
    public var recordsAppended: UInt64 = 0
    public var batchesWritten = 0
    public var writes = 0
    public var synchronizations = 0
    public var bytesWritten: Int64 = 0
    /// Bytes of the records written, before compression (with `bytesWritten`, the ratio).
    public var uncompressedBytes: Int64 = 0
    /// Time spent in `fdatasync` for appends, in all and the longest one.
    public var synchronizationNanoseconds: Int64 = 0
    public var longestSynchronizationNanoseconds: Int64 = 0
    public var segmentsRolled = 0
    /// Segment dictionaries made (docs/log-format.md, "Segment dictionaries").
    public var dictionariesWritten = 0
    public var failures = 0
}
