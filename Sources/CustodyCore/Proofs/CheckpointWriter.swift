import CustodyLog
import Logging

/// When checkpoints are written, and with which key (docs/operations.md, "Signed checkpoints").
public struct CheckpointSettings: Sendable {
    /// The signing key.
    public var key: SigningKey
    /// Where the key lives (a rotation writes the new key here and keeps the old one beside it);
    /// nil for a key that is not in a file (tests, benchmarks), which cannot be rotated.
    public var keyPath: String?
    /// A checkpoint is written this long after the last one when events have been appended
    /// since (10 s by default), and on clean shutdown.
    public var interval: Duration
    /// ... and as soon as this many events were appended since the last one, so a proof never
    /// has to carry more than about this many events.
    public var eventInterval: UInt64
    /// The key the log's newest checkpoint was signed with, when it never announced ``key``: a
    /// rotation whose announcing checkpoint a crash lost (acknowledged but not yet synchronized,
    /// with fsync other than `always`) after the key files were renamed. The first checkpoint is
    /// then signed with it and announces ``key``
    /// (``CheckpointWriter/unannouncedRotation(keyPath:key:newest:)``).
    public var announcingFrom: SigningKey?

    public init(
        key: SigningKey,
        keyPath: String? = nil,
        interval: Duration = .seconds(10),
        eventInterval: UInt64 = 16_384,
        announcingFrom: SigningKey? = nil
    ) {
        self.key = key
        self.keyPath = keyPath
        self.interval = interval
        self.eventInterval = max(eventInterval, 1)
        self.announcingFrom = announcingFrom
    }
}

/// Appends the signed `log.checkpoint` events: one long-running job of ``CoreRuntime/run()``,
/// and the last checkpoint at ``CoreRuntime/close()``.
///
/// Guarantees:
/// - A checkpoint attests the log's durable head when it was read (``EventLog/chainHead``): a
///   seq and chain value that were acknowledged, so a checkpoint never vouches for an event that
///   could still be lost.
/// - Nothing is written while nothing happens: a checkpoint is due only when events other than
///   the last checkpoint were appended after it.
/// - A rotation appends a checkpoint signed with the old key that names the new one, and only
///   then signs with the new key; the new key file is written before the checkpoint that
///   announces it, so a crash in between leaves a key the log never announced (thrown away on
///   the next start) or a rotation that is finished on the next start.
public actor CheckpointWriter {
    let log: any EventLog
    let settings: CheckpointSettings
    let logger: Logger
    private(set) var key: SigningKey
    /// The newest checkpoint in the log, and the seq of its record.
    private(set) var newest: StoredLogCheckpoint?
    /// ``CheckpointSettings/announcingFrom``, until the checkpoint it signs is appended.
    private var announcer: SigningKey?

    /// A writer for `log`, after `newest` (the newest checkpoint already in it). The runtime owns
    /// one (``CoreRuntime/Configuration/signing``); `custody bench ingest` runs one beside its
    /// appenders to measure what checkpoints cost.
    public init(log: any EventLog, settings: CheckpointSettings, newest: StoredLogCheckpoint?, logger: Logger) {
        self.log = log
        self.settings = settings
        self.key = settings.key
        self.newest = newest
        self.logger = logger
        self.announcer = settings.announcingFrom
        let expected = newest.map { $0.checkpoint.nextPublicKey ?? $0.checkpoint.publicKey }
        if let expected, expected != settings.key.publicKey, settings.announcingFrom?.publicKey != expected {
            logger.error(
                "the signing key is not the one this log's checkpoints announced; checkpoints from now on are signed by a key `custody log verify` reports as unannounced",
                metadata: ["key_id": "\(settings.key.keyID)", "expected_key_id": "\(LogCheckpoint.keyID(of: expected))"]
            )
        }
        logger.info("signing checkpoints", metadata: ["key_id": "\(settings.key.keyID)"])
    }

    /// The current signing key's public half.
    public var publicKey: [UInt8] { key.publicKey }

    /// Whether events other than the newest checkpoint were appended after it.
    private func isDue(head: UInt64) -> Bool {
        head > (newest?.recordSeq ?? 0)
    }

    /// Writes checkpoints as ``CheckpointSettings`` says until the task is cancelled.
    public func run() async {
        while !Task.isCancelled {
            let deadline = ContinuousClock.now + settings.interval
            let threshold = (newest?.recordSeq ?? 0) + settings.eventInterval
            let log = log
            // Whichever comes first: the interval, or enough events.
            await withTaskGroup(of: Void.self) { group in
                group.addTask { try? await Task.sleep(until: deadline, clock: .continuous) }
                group.addTask { _ = try? await log.waitForAppend(after: threshold) }
                await group.next()
                group.cancelAll()
            }
            if Task.isCancelled { return }
            do {
                try await writeCheckpoint()
            } catch {
                logger.warning("could not write a checkpoint; trying again later", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: .seconds(1))
            }
        }
    }

    /// Appends a checkpoint of the durable head when one is due (`force`: even when not), and
    /// returns the newest checkpoint.
    @discardableResult
    public func writeCheckpoint(force: Bool = false) async throws -> StoredLogCheckpoint? {
        let head = await log.chainHead
        if let announcer {
            let stored = try await append(try LogCheckpoint(head: head, at: LogTime.now(), key: announcer, announcing: key))
            self.announcer = nil
            logger.notice(
                "announced the signing key, which a crash had left unannounced",
                metadata: ["old_key_id": "\(announcer.keyID)", "key_id": "\(key.keyID)"]
            )
            return stored
        }
        guard force || isDue(head: head.seq) else { return newest }
        return try await append(try LogCheckpoint(head: head, at: LogTime.now(), key: key))
    }

    private func append(_ checkpoint: LogCheckpoint) async throws -> StoredLogCheckpoint {
        let receipt = try await log.append([EventCodec.encode(.logCheckpoint(checkpoint))])
        let stored = StoredLogCheckpoint(checkpoint: checkpoint, recordSeq: receipt.lastSeq)
        newest = stored
        return stored
    }

    /// The last checkpoint before the log closes (clean shutdown); nothing when none is due.
    public func writeFinalCheckpoint() async {
        do {
            try await writeCheckpoint()
        } catch {
            logger.warning("could not write the shutdown checkpoint", metadata: ["error": "\(error)"])
        }
    }

    /// Rotates the signing key: a new key is written to the key file's place (the old file kept
    /// as `FILE.retired-KEYID`), a checkpoint signed with the old key announces it, and later
    /// checkpoints are signed with it. Returns the announcing checkpoint.
    public func rotateKey() async throws(CoreError) -> StoredLogCheckpoint {
        guard let path = settings.keyPath else {
            throw CoreError(.conflict, "this server's signing key is not in a file, so it cannot be rotated")
        }
        let next = SigningKey.generate()
        let pending = path + ".next"
        try next.write(to: pending)
        let head = await log.chainHead
        let announcing: StoredLogCheckpoint
        do {
            announcing = try await append(try LogCheckpoint(head: head, at: LogTime.now(), key: key, announcing: next))
        } catch let error as CoreError {
            throw error
        } catch {
            throw CoreError(appending: error)
        }
        try Self.finishRotation(keyPath: path, retiringKeyID: key.keyID)
        logger.notice("rotated the signing key", metadata: ["old_key_id": "\(key.keyID)", "key_id": "\(next.keyID)"])
        key = next
        return announcing
    }

    /// Moves a rotation's new key (`FILE.next`) into place, keeping the old key as
    /// `FILE.retired-KEYID`. Either step may already have been done (a crash between them).
    static func finishRotation(keyPath path: String, retiringKeyID oldKeyID: String) throws(CoreError) {
        let retired = path + ".retired-" + oldKeyID
        guard rename(path, retired) == 0 || access(retired, F_OK) == 0, rename(path + ".next", path) == 0 else {
            throw CoreError(.storageUnavailable, "could not move the new signing key into \(path)")
        }
    }

    /// Loads the key for a server: the file at `path` (created when missing), finishing a
    /// rotation a crash interrupted or dropping one it never announced.
    ///
    /// A rotation writes `FILE.next`, appends the checkpoint announcing it, renames `FILE` to
    /// `FILE.retired-KEYID` and `FILE.next` to `FILE`. A crash after any step leaves a state
    /// this reads right: `FILE.next` that `newest` (the newest checkpoint in the log) announces
    /// is the key, whether or not `FILE` was renamed yet; one it does not announce never signed
    /// anything and is removed, `FILE` staying the key.
    public static func loadKey(at path: String, newest: StoredLogCheckpoint?, logger: Logger) throws(CoreError) -> SigningKey {
        let pending = path + ".next"
        if access(pending, F_OK) == 0 {
            let next = try SigningKey.load(from: pending)
            if let newest, newest.checkpoint.nextPublicKey == next.publicKey {
                try finishRotation(keyPath: path, retiringKeyID: newest.checkpoint.keyID)
                logger.notice("finished a key rotation that a crash interrupted", metadata: ["key_id": "\(next.keyID)"])
            } else {
                unlink(pending)
            }
        }
        let (key, created) = try SigningKey.loadOrCreate(at: path)
        if created {
            logger.notice("created a signing key for checkpoints", metadata: ["path": "\(path)", "key_id": "\(key.keyID)"])
        }
        return key
    }

    /// The retired key (`FILE.retired-KEYID`) the log expects next (the key `newest` announced,
    /// else the one that signed it) when that is not `key`: a finished rotation whose announcing checkpoint is
    /// not in the log (``CheckpointSettings/announcingFrom``). Nil otherwise, and when no retired
    /// file holds that key (the key was replaced by hand: `custody log verify` reports the
    /// unannounced key).
    public static func unannouncedRotation(keyPath path: String, key: SigningKey, newest: StoredLogCheckpoint?) -> SigningKey? {
        guard let newest else { return nil }
        let expected = newest.checkpoint.nextPublicKey ?? newest.checkpoint.publicKey
        guard expected != key.publicKey,
            let retired = try? SigningKey.load(from: path + ".retired-" + LogCheckpoint.keyID(of: expected)), retired.publicKey == expected
        else { return nil }
        return retired
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
