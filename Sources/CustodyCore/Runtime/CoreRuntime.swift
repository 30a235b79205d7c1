import CustodyLog
import Logging
import NIOCore

/// One open data directory with everything derived from its log: the projections and their
/// projector, the active-span cache, the live hub, and the core operations over them. The server,
/// the RPC service and the commands all work through one of these.
///
/// ``open(directory:configuration:logger:liveEncoding:)`` recovers the log, brings the projections
/// up to its head and refills the cache before returning (docs/benchmarks.md P10 measures exactly this);
/// ``run()`` then keeps every derived view following the log until it is cancelled, and
/// ``close()`` checkpoints and closes.
public final class CoreRuntime: Sendable {
    public let log: any EventLog
    public let projector: Projector
    public let cache: ActiveSpanCache
    public let hub: LiveHub
    public let context: CoreContext
    public let tasks: TaskOperations
    public let delivery: DeliveryOperations
    public let logs: LogOperations
    public let traces: TraceQueries
    public let spanExport: SpanExport
    public let replay: TraceReplay
    public let github: GitHubOperations
    /// Checkpoints, proofs and trace verification (docs/api.md, "Custody proofs").
    public let proofs: ProofOperations
    /// Online rebuilds of the projections (`POST /api/admin/rebuild`).
    public let rebuild = RebuildController()
    /// RED metrics of the spans read from the log since this runtime started.
    public let spanMetrics = SpanMetrics()
    /// The log's head when the derived views were brought up to date.
    let openedAt: UInt64
    public let logger: Logger
    /// Who writes the checkpoints (``Configuration/lease``).
    public let lease: any WorkLease
    /// Retention's policy and snapshots (nil without a data directory).
    public let retention: Retention?
    /// Keeps a retention pass apart from a backup and an online rebuild (key ``logFiles``): a
    /// backup copies files a pass would delete, a rebuild reads the log from a first seq a pass
    /// moves.
    let storage = KeyedSerializer()
    static let logFiles = "log-files"
    /// The state snapshots retention takes.
    var snapshots: StateSnapshots? { retention?.snapshots }

    /// What ``open(directory:configuration:logger:liveEncoding:)`` needs beyond the directory.
    public struct Configuration: Sendable {
        public var log = LogConfiguration()
        public var damagePolicy = DamagePolicy.refuse
        /// The file layer under the log (a fault-injecting one in tests).
        public var fileSystem: any LogFileSystem = PosixFileSystem()
        public var cacheTTL: Duration = .seconds(15 * 60)
        public var cacheCapacity = 100_000
        /// How long a read waits for the projections to reach the writes before it.
        public var readTimeout: Duration = .seconds(5)
        /// The workers a live replay dispatches to (nil: none configured).
        public var workers: (any ReplayWorkers)?
        /// How GitHub operations are carried out (nil: not configured, `github_not_configured`).
        public var github: GitHubSettings?
        /// Which key signs the log's checkpoints.
        public var signing = Signing.besideDataDirectory
        /// A checkpoint this long after the last one when events came in since (and at shutdown).
        public var checkpointInterval: Duration = .seconds(10)
        /// ... or as soon as this many events came in.
        public var checkpointEventInterval: UInt64 = 16_384
        /// Who may do the work that must happen on one node at a time (checkpoints): always this
        /// runtime on its own log; a lease kept in the engine in cluster mode.
        public var lease: any WorkLease = SoleWriterLease()
        /// What retention deletes, and how often it looks (off by default).
        public var retention = RetentionPolicy()
        /// The other nodes reading the log, whose snapshots retention waits for: none on the
        /// embedded log.
        public var peers: any LogPeers = NoLogPeers()
        /// Where retention keeps its state snapshots: the data directory's `snapshots/` (set by
        /// the `open` functions; nil leaves retention off).
        public var snapshots: StateSnapshots?

        public init() {}

        /// This configuration with ``Signing/besideDataDirectory`` made the key file beside
        /// `directory`.
        func signingBeside(_ directory: String) -> Configuration {
            var configuration = self
            if case .besideDataDirectory = signing {
                configuration.signing = .keyFile(SigningKey.defaultPath(forDataDirectory: directory))
            }
            if configuration.snapshots == nil { configuration.snapshots = StateSnapshots(dataDirectory: directory) }
            return configuration
        }

        /// Where the signing key of checkpoints comes from (docs/operations.md, "The signing key").
        public enum Signing: Sendable {
            /// `DATA_DIR.signing-key` beside the data directory, created on first start.
            case besideDataDirectory
            /// This file (created when missing).
            case keyFile(String)
            /// This key, not in a file (tests, benchmarks; it cannot be rotated).
            case key(SigningKey)
            /// No checkpoints (also when the log runs without the hash chain).
            case off
        }
    }

    private init(
        log: any EventLog,
        projector: Projector,
        cache: ActiveSpanCache,
        hub: LiveHub,
        context: CoreContext,
        openedAt: UInt64,
        workers: (any ReplayWorkers)?,
        github: GitHubSettings?,
        outbox: GitHubOutbox?,
        checkpoints: CheckpointWriter?,
        lease: any WorkLease,
        retention: Retention?,
        logger: Logger
    ) {
        self.log = log
        self.projector = projector
        self.cache = cache
        self.hub = hub
        self.context = context
        self.tasks = TaskOperations(context: context)
        self.delivery = DeliveryOperations(context: context)
        self.logs = LogOperations(log: log)
        self.traces = TraceQueries(context: context, cache: cache)
        self.spanExport = SpanExport(logs: logs, cache: cache)
        self.replay = TraceReplay(context: context, traces: traces, workers: workers)
        self.github = GitHubOperations(context: context, settings: github, outbox: outbox)
        self.proofs = ProofOperations(context: context, traces: traces, checkpoints: checkpoints)
        self.openedAt = openedAt
        self.logger = logger
        self.lease = lease
        self.retention = retention
    }

    /// Opens (creating if needed) the data directory: recovers the log, catches the projections
    /// up with it and refills the active-span cache. `liveEncoding` encodes a span once for every
    /// live client (the adapter's wire format).
    ///
    /// `store` is where the projections are when not in the directory's `projections.sqlite`
    /// (PostgreSQL: docs/projections.md); it is closed with the runtime.
    public static func open(
        directory: String,
        store external: (any ProjectionStore)? = nil,
        configuration: Configuration = Configuration(),
        logger: Logger = Logger(label: "custody"),
        liveEncoding: LiveEncoding = .none
    ) async throws -> CoreRuntime {
        let databasePath = ProjectionPaths.database(in: directory)
        // Whatever the projections applied had been acknowledged: a log that ends before it has
        // lost acknowledged events, however whole its last batch looks.
        let applied = try await external?.appliedSeq() ?? SQLiteProjectionStore.appliedSeq(ofDatabaseAt: databasePath)
        let witness = external == nil ? "the projections' checkpoint (projections.sqlite)" : "the projections' checkpoint (\(type(of: external!)))"
        let log = try await SegmentLog.open(
            directory: directory,
            configuration: configuration.log,
            damagePolicy: configuration.damagePolicy,
            acknowledged: applied > 0 ? AcknowledgedMark(seq: applied, witness: witness) : nil,
            fileSystem: configuration.fileSystem,
            logger: logger
        )
        let store: any ProjectionStore
        do {
            let snapshots = StateSnapshots(dataDirectory: directory)
            if let external {
                try await recordLosses(log: log, store: external, snapshots: snapshots, logger: logger)
                store = external
            } else {
                store = try await recordLosses(log: log, databasePath: databasePath, snapshots: snapshots, logger: logger)
            }
        } catch {
            await log.close()
            throw error
        }
        return try await start(
            log: log,
            store: store,
            configuration: configuration.signingBeside(directory),
            logger: logger,
            liveEncoding: liveEncoding
        )
    }

    /// Opens a runtime over `log`, an engine other than the data directory's own segment log
    /// (cluster mode's JetStream stream), with its projections and signing key in `directory` as
    /// usual. Refuses when the projections have applied events the log does not hold (a stream
    /// that was lost or replaced under them): they would describe another record. On failure the
    /// log is closed.
    /// `store` is where the projections are when not in the directory's `projections.sqlite`
    /// (PostgreSQL, shared by the nodes: docs/projections.md).
    public static func open(
        log: any EventLog,
        projectionsIn directory: String,
        store external: (any ProjectionStore)? = nil,
        configuration: Configuration = Configuration(),
        logger: Logger = Logger(label: "custody"),
        liveEncoding: LiveEncoding = .none
    ) async throws -> CoreRuntime {
        let store: any ProjectionStore
        do {
            let databasePath = ProjectionPaths.database(in: directory)
            let applied = try await external?.appliedSeq() ?? SQLiteProjectionStore.appliedSeq(ofDatabaseAt: databasePath)
            let head = await log.lastSeq
            guard applied <= head else {
                let remedy =
                    external == nil
                    ? "move \(databasePath) away to rebuild them from this log" : "drop their schema to rebuild them from this log"
                throw LogError(
                    .dataLoss,
                    "the projections \(external.map { "in \($0)" } ?? "in \(directory)") have applied events up to seq \(applied), but the log ends at seq \(head): it is not the log they were made from (\(remedy))"
                )
            }
            store = try external ?? SQLiteProjectionStore(path: databasePath)
        } catch {
            await log.close()
            throw error
        }
        return try await start(
            log: log,
            store: store,
            configuration: configuration.signingBeside(directory),
            logger: logger,
            liveEncoding: liveEncoding
        )
    }

    /// Brings everything derived from `log` up to date over `store` — the projections caught up,
    /// interrupted replays closed, the cache refilled, the outbox loaded — whatever engines the
    /// two are (docs/architecture.md, "The two seams"). On failure the log is closed.
    public static func start(
        log: any EventLog,
        store: any ProjectionStore,
        configuration: Configuration = Configuration(),
        logger: Logger = Logger(label: "custody"),
        liveEncoding: LiveEncoding = .none
    ) async throws -> CoreRuntime {
        do {
            try await checkNotBehindRetention(log: log, store: store)
            let projector = Projector(log: log, store: store, logger: logger)
            try await projector.catchUp()
            let interrupted = try await TraceReplay.closeInterrupted(log: log, store: store)
            if interrupted > 0 {
                logger.notice("replays cut short by the last stop are now recorded as aborted", metadata: ["replays": "\(interrupted)"])
                try await projector.catchUp()
            }
            let cache = ActiveSpanCache(ttl: configuration.cacheTTL, capacity: configuration.cacheCapacity)
            let head = await log.lastSeq
            try await cache.refill(from: log)
            let hub = LiveHub(log: log, startingAfter: head, logger: logger, encoding: liveEncoding)
            var context = CoreContext(log: log, projector: projector, readTimeout: configuration.readTimeout)
            context.snapshots = configuration.snapshots
            // The outbox reads what is pending each time it starts (when this node takes the
            // lease), once the projections hold everything acknowledged anywhere before.
            var outbox: GitHubOutbox?
            if let github = configuration.github {
                outbox = GitHubOutbox(log: log, settings: github, logger: logger) {
                    let head = try await log.synchronize()
                    try await projector.waitUntilApplied(head, timeout: .seconds(60))
                    return try await projector.store.pendingGitHubOperations()
                }
            }
            let checkpoints = try await makeCheckpointWriter(log: log, store: store, configuration: configuration, logger: logger)
            return CoreRuntime(
                log: log,
                projector: projector,
                cache: cache,
                hub: hub,
                context: context,
                openedAt: head,
                workers: configuration.workers,
                github: configuration.github,
                outbox: outbox,
                checkpoints: checkpoints,
                lease: configuration.lease,
                retention: configuration.snapshots.map { Retention(policy: configuration.retention, snapshots: $0, peers: configuration.peers) },
                logger: logger
            )
        } catch {
            try? await store.close()
            await log.close()
            throw error
        }
    }

    /// The checkpoint writer `configuration` asks for, nil when checkpoints are off.
    static func makeCheckpointWriter(
        log: any EventLog,
        store: any ProjectionStore,
        configuration: Configuration,
        logger: Logger
    ) async throws -> CheckpointWriter? {
        guard configuration.log.hashChain else { return nil }
        let newest = try await store.latestLogCheckpoint()
        let key: SigningKey
        var path: String?
        var announcingFrom: SigningKey?
        switch configuration.signing {
        case .off:
            return nil
        case .besideDataDirectory:
            throw CoreError(.invalidArgument, "a log without a data directory needs a signing key file or key")
        case .key(let given):
            key = given
        case .keyFile(let file):
            key = try CheckpointWriter.loadKey(at: file, newest: newest, logger: logger)
            announcingFrom = CheckpointWriter.unannouncedRotation(keyPath: file, key: key, newest: newest)
            path = file
        }
        let settings = CheckpointSettings(
            key: key,
            keyPath: path,
            interval: configuration.checkpointInterval,
            eventInterval: configuration.checkpointEventInterval,
            announcingFrom: announcingFrom
        )
        return CheckpointWriter(log: log, settings: settings, newest: newest, logger: logger)
    }

    /// Finishes what a repair started: every range `quarantine.json` records as lost gets one
    /// `log.loss` event in the log. While one has none, the projections may hold events the log no
    /// longer has (or an earlier repair stopped half-way): they are rebuilt from the log first,
    /// before anything is served. Returns the projection store to use. Every step can be
    /// repeated after a crash: the events are appended only for losses the rebuilt projections
    /// do not already hold.
    static func recordLosses(
        log: any EventLog,
        databasePath: String,
        snapshots: StateSnapshots,
        logger: Logger
    ) async throws -> SQLiteProjectionStore {
        var store = try SQLiteProjectionStore(path: databasePath)
        let losses = log.recordedLosses
        guard !losses.isEmpty else { return store }
        func unrecorded(in store: any ProjectionStore) async throws -> [QuarantineRecord] {
            let recorded = try await store.recordedLosses()
            return losses.filter { !recorded.contains($0.key) }
        }
        guard try await !unrecorded(in: store).isEmpty else { return store }
        try await store.close()
        logger.notice("rebuilding the projections from the log, which has lost events", metadata: ["losses": "\(losses.count)"])
        let report = try await ProjectionRebuild.rebuild(log: log, databasePath: databasePath, snapshots: snapshots)
        logger.notice("rebuilt the projections", metadata: ["events": "\(report.events)", "seconds": "\(report.seconds)"])
        store = try SQLiteProjectionStore(path: databasePath)
        let missing = try await unrecorded(in: store)
        if !missing.isEmpty {
            var events: [ByteBuffer] = []
            for loss in missing {
                // The chain value before the gap, so the chain can be followed up to it.
                let before = try await log.chainValue(after: loss.firstLostSeq - 1)
                events.append(EventCodec.encode(.logLoss(LogLoss(loss, chainBefore: before))))
            }
            let receipt = try await log.append(events)
            logger.notice(
                "recorded the loss in the log",
                metadata: ["events": "\(missing.count)", "seqs": "\(receipt.firstSeq)...\(receipt.lastSeq)"]
            )
        }
        return store
    }

    /// ``recordLosses(log:databasePath:snapshots:logger:)`` for a store that is not the data
    /// directory's file (PostgreSQL): a rebuild into its rebuild target, swapped in, when it
    /// lacks a loss; then the missing `log.loss` events.
    static func recordLosses(log: any EventLog, store: any ProjectionStore, snapshots: StateSnapshots, logger: Logger) async throws {
        let losses = log.recordedLosses
        guard !losses.isEmpty else { return }
        func unrecorded() async throws -> [QuarantineRecord] {
            let recorded = try await store.recordedLosses()
            return losses.filter { !recorded.contains($0.key) }
        }
        guard try await !unrecorded().isEmpty else { return }
        logger.notice("rebuilding the projections from the log, which has lost events", metadata: ["losses": "\(losses.count)"])
        let target = try await store.makeRebuildTarget()
        do {
            _ = try await ProjectionRebuild.build(log: log, snapshots: snapshots, into: target, progress: nil)
            _ = try await store.replaceContents(with: target)
        } catch {
            try? await target.close()
            throw error
        }
        let missing = try await unrecorded()
        guard !missing.isEmpty else { return }
        var events: [ByteBuffer] = []
        for loss in missing {
            events.append(EventCodec.encode(.logLoss(LogLoss(loss, chainBefore: try await log.chainValue(after: loss.firstLostSeq - 1)))))
        }
        _ = try await log.append(events)
    }

    /// Keeps the projections, the cache and the live hub following the log until the task is
    /// cancelled (or the log closes). A failure of one of them ends all of them and is thrown.
    public func run() async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await self.projector.run() }
            group.addTask { try await self.cache.follow(self.log, from: self.openedAt + 1, observe: self.spanMetrics.record) }
            group.addTask { try await self.hub.run() }
            // It ends only when cancelled, after appending what is queued.
            group.addTask { await self.context.responses.run(self.context) }
            group.addTask { await self.rebuild.run(self.projector, snapshots: self.snapshots, storage: self.storage, key: Self.logFiles) }
            // Every node follows the deletions retention records, whoever runs the passes.
            if self.retention != nil { group.addTask { await self.followRetention() } }
            // The work done by one node at a time, while it holds the lease: checkpoints and the
            // GitHub outbox. It ends only when cancelled: the others' end is what ends the group.
            let checkpoints = self.proofs.checkpoints
            let outbox = self.github.outbox
            let retains = self.retention?.policy.isEnabled == true
            if checkpoints != nil || outbox != nil || retains {
                let lease = self.lease
                group.addTask {
                    await lease.run {
                        await withTaskGroup(of: Void.self) { work in
                            if let checkpoints { work.addTask { await checkpoints.run() } }
                            if let outbox { work.addTask { await outbox.run() } }
                            if retains { work.addTask { await self.runRetention() } }
                        }
                    }
                }
            }
            try await group.next()
            group.cancelAll()
        }
    }

    /// Closes the log (what is pending is written; later appends are refused), applies to the
    /// projections whatever they have not applied yet, and closes the projection store (WAL
    /// checkpointed): after it the projections hold the whole log. Call after ``run()`` has
    /// ended. Runs to completion even when the calling task is cancelled.
    public func close() async {
        let projector = projector
        let log = log
        let logger = logger
        let checkpoints = proofs.checkpoints
        let lease = lease
        await Task {
            // The last checkpoint attests everything acknowledged before the close (written by
            // the node whose turn it is).
            if await lease.isHeld { await checkpoints?.writeFinalCheckpoint() }
            // The log first: it writes what is pending and takes nothing more (a best-effort
            // `response_sent` still on its way is refused), so the projections then catch up
            // with its final head. Reads still work on a closed log.
            await log.close()
            do {
                try await projector.catchUp()
            } catch {
                logger.warning(
                    "the projections could not catch up before closing; they resume from their checkpoint",
                    metadata: ["error": "\(error)"]
                )
            }
            do {
                try await projector.store.close()
            } catch {
                logger.warning("closing the projections failed; they resume from their checkpoint", metadata: ["error": "\(error)"])
            }
        }.value
    }
}

extension QuarantineRecord {
    /// What identifies this range in the projections' `log_losses`.
    var key: LossKey { LossKey(firstSeq: firstLostSeq, lastSeq: lastLostSeq, segment: segment, offset: offset) }
}

extension LogLoss {
    /// The `log.loss` event of a range `quarantine.json` records.
    init(_ record: QuarantineRecord, chainBefore: ChainValue?) {
        self.init(
            firstSeq: record.firstLostSeq,
            lastSeq: record.lastLostSeq,
            segment: record.segment,
            offset: record.offset,
            length: record.length,
            sideFile: record.sideFile,
            reason: record.defect,
            recordedAt: record.recordedAt ?? LogTime.now(),
            chainBefore: chainBefore
        )
    }
}

extension CoreRuntime {
    /// Read-your-writes across nodes (`x-custody-min-seq`, `min_seq` in RPC metadata): waits
    /// until this node's projections have applied every event up to `seq` — a write acknowledged
    /// by another node of a cluster included — for at most the read timeout, after which it fails
    /// with `overloaded`, like a read waiting for this node's own writes.
    public func awaitApplied(minimumSeq seq: UInt64) async throws(CoreError) {
        try await projector.waitUntilApplied(seq, timeout: context.readTimeout)
    }

    /// A `x-custody-min-seq` / `min_seq` value: a seq, 1 to 2^63 − 1.
    public static func minimumSeq(parsing text: String) throws(CoreError) -> UInt64 {
        guard let seq = UInt64(text), seq >= 1, seq <= UInt64(Int64.max) else {
            throw CoreError(
                .invalidArgument,
                "x-custody-min-seq takes a seq (a whole number from 1), not \(text.prefix(40))",
                field: "x-custody-min-seq"
            )
        }
        return seq
    }
}
