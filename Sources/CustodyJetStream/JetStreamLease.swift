import CustodyLog
import Foundation
import Logging

/// A lease kept in a JetStream key-value bucket (`<stream>_LEASES`, as replicated as the
/// stream): which node does the work that must happen once (docs/operations.md, "Cluster mode").
///
/// The key `name` holds `node/instance expiry`: the node's name, a random number of this process
/// (a restarted node is another holder, and so is a second process started under one name by
/// mistake), and the expiry in Unix nanoseconds. A process takes the lease when the key is empty
/// or its expiry has passed, by writing its own holder and expiry over the revision it read, and
/// holds it once the key still names it ``Configuration/retryEvery`` later: of two nodes trying
/// at once JetStream usually refuses one write (it names a revision that is no longer the
/// newest), and when both were stored — nats-server 2.9 checks against applied writes only —
/// the second read leaves one holder. The holder renews every ``Configuration/renewEvery``
/// the same way. Work runs only while the holder's own clock is more than
/// ``Configuration/safetyMargin`` before the expiry it last wrote, and is cancelled and awaited
/// before that point; a node waiting for the lease takes it only after that expiry on its own
/// clock. So two nodes never work at once as long as their clocks differ by less than the
/// margin (NTP keeps them within milliseconds). A holder that dies is replaced within
/// ``Configuration/duration`` plus twice ``Configuration/retryEvery``.
public actor JetStreamLease {
    public struct Configuration: Sendable {
        /// How long a written lease lasts (15 s).
        public var duration: Duration
        /// How often the holder writes a new expiry (every 3 s).
        public var renewEvery: Duration
        /// How often a waiting node reads the lease again (every 1 s).
        public var retryEvery: Duration
        /// Work stops this long before the expiry the holder last wrote (3 s).
        public var safetyMargin: Duration

        public init(
            duration: Duration = .seconds(15),
            renewEvery: Duration = .seconds(3),
            retryEvery: Duration = .seconds(1),
            safetyMargin: Duration = .seconds(3)
        ) {
            self.duration = duration
            self.renewEvery = renewEvery
            self.retryEvery = retryEvery
            self.safetyMargin = safetyMargin
        }
    }

    public let name: String
    public let nodeName: String
    /// This process as the lease's holder: `node/instance`.
    let owner: String
    let bucket: KeyValueBucket
    let configuration: Configuration
    let logger: Logger
    /// The expiry this node last wrote, while it holds the lease (Unix nanoseconds).
    private var heldUntil: Int64?
    private var revision: UInt64 = 0
    private var lastHolder: String?

    public init(name: String, nodeName: String, bucket: KeyValueBucket, configuration: Configuration = Configuration(), logger: Logger) {
        self.name = name
        self.nodeName = nodeName
        owner = nodeName + "/" + String(UInt64.random(in: 0...UInt64.max), radix: 36)
        self.bucket = bucket
        self.configuration = configuration
        self.logger = logger
    }

    /// The lease `name` of the stream `log` is on, in its bucket (created when missing).
    public static func open(
        name: String,
        log: JetStreamLog,
        configuration: Configuration = Configuration(),
        logger: Logger
    ) async throws -> JetStreamLease {
        let bucket = try await log.keyValueBucket("LEASES")
        return JetStreamLease(name: name, nodeName: log.configuration.nodeName, bucket: bucket, configuration: configuration, logger: logger)
    }

    /// Whether work may run now: this node wrote the lease and its expiry is more than the
    /// safety margin away.
    public var isHeld: Bool {
        guard let heldUntil else { return false }
        return Self.now() < heldUntil - configuration.safetyMargin.nanoseconds
    }

    /// The node that wrote the lease last, as this node last read it.
    public var holder: String? { isHeld ? nodeName : lastHolder }

    /// Runs `work` whenever this node holds the lease, until cancelled: waits for it, runs
    /// `work` while renewing, and cancels and awaits `work` as soon as a renewal fails for long
    /// enough that the lease could pass on.
    public func run(whileHeld work: @escaping @Sendable () async -> Void) async {
        while !Task.isCancelled {
            guard let expiry = await acquire(), await confirm(until: expiry) else {
                try? await Task.sleep(for: configuration.retryEvery)
                continue
            }
            logger.notice("took the lease", metadata: ["lease": "\(name)", "node": "\(nodeName)"])
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await work() }
                group.addTask { await self.keepRenewed() }
                // Whichever ends first — the lease lost, or the task cancelled — ends both.
                await group.next()
                group.cancelAll()
            }
            if !Task.isCancelled {
                logger.warning("lost the lease; its work stopped", metadata: ["lease": "\(name)", "node": "\(nodeName)"])
            }
        }
    }

    /// Writes the lease when it is free, expired or already this node's; the expiry written,
    /// nil when another node holds it (or JetStream did not answer). Held only once confirmed.
    private func acquire() async -> Int64? {
        do {
            let entry = try await bucket.get(name)
            if let entry, let (holder, expiry) = Self.parse(entry.value) {
                lastHolder = Self.node(holder)
                guard holder == owner || Self.now() > expiry else { return nil }
            }
            return await write(replacing: entry?.revision ?? 0)
        } catch {
            logger.debug("could not read the lease", metadata: ["lease": "\(name)", "error": "\(error)"])
            return nil
        }
    }

    /// Whether the lease this node just wrote is still its own a moment later. nats-server 2.9
    /// checks a key-value update's expected revision against the writes its stream leader has
    /// applied, not those still being replicated, so two nodes taking a free lease at the same
    /// moment can both have their write stored; the later one is the key's value. Reading the
    /// key again after ``Configuration/retryEvery`` — by then both writes are applied — leaves
    /// one holder: the other gives the lease up before doing any work.
    private func confirm(until expiry: Int64) async -> Bool {
        try? await Task.sleep(for: configuration.retryEvery)
        guard !Task.isCancelled, let entry = try? await bucket.get(name), let (holder, _) = Self.parse(entry.value), holder == owner else {
            logger.debug("another node's write of the lease came after this node's", metadata: ["lease": "\(name)"])
            return false
        }
        revision = entry.revision
        heldUntil = expiry
        lastHolder = nodeName
        return isHeld
    }

    /// Writes this node's name and a new expiry over `revision`; the expiry when it was stored.
    private func write(replacing revision: UInt64) async -> Int64? {
        let expiry = Self.now() + configuration.duration.nanoseconds
        do {
            self.revision = try await bucket.put(name, Array("\(owner) \(expiry)".utf8), replacing: revision)
            return expiry
        } catch {
            logger.debug("could not write the lease", metadata: ["lease": "\(name)", "error": "\(error)"])
            return nil
        }
    }

    /// Renews the lease every ``Configuration/renewEvery`` while it holds; returns once it is no
    /// longer held (another node wrote it, or renewals failed until the safety margin).
    private func keepRenewed() async {
        while isHeld {
            try? await Task.sleep(for: configuration.renewEvery)
            if Task.isCancelled { return }
            if let expiry = await write(replacing: revision) {
                heldUntil = expiry
                continue
            }
            // Another node's write, or no answer: read it again; the lease is held until its
            // margin runs out unless someone else holds it now.
            if let entry = try? await bucket.get(name), let (holder, _) = Self.parse(entry.value) {
                guard holder == owner else {
                    lastHolder = Self.node(holder)
                    heldUntil = nil
                    return
                }
                // Our write was stored though its answer was lost: renew over it next time.
                revision = entry.revision
            }
        }
        heldUntil = nil
    }

    /// The node's name in a holder (`node/instance`).
    static func node(_ holder: String) -> String {
        holder.split(separator: "/", maxSplits: 1).first.map(String.init) ?? holder
    }

    static func parse(_ value: [UInt8]) -> (String, Int64)? {
        let parts = String(decoding: value, as: UTF8.self).split(separator: " ")
        guard parts.count == 2, let expiry = Int64(parts[1]) else { return nil }
        return (String(parts[0]), expiry)
    }

    static func now() -> Int64 { Int64(Date().timeIntervalSince1970 * 1e9) }
}
