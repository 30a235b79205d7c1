import CustodyLog
import NIOCore

/// `custody log verify` with everything the log's bytes alone cannot say: the signature of every
/// `log.checkpoint` and the chain of keys that signed them, a checkpoint saved earlier, and
/// receipts (docs/operations.md, "Tamper evidence").
///
/// Rules:
/// - Every checkpoint's Ed25519 signature must hold, and its (seq, chain) must be what the
///   recomputed chain had there.
/// - With a trusted key (the server's key file), a checkpoint may be signed by it or by a key
///   that announced, in a validly signed rotation, a key that may sign; without one, by the first
///   checkpoint's key and then each key a rotation announced. Any other signer is damage.
/// - A saved checkpoint must carry a valid signature by one of the log's keys (or the trusted
///   key), and the log must reach its seq with its chain value there: a log cut back or rewritten
///   after it was saved fails even when every CRC and every stored chain value is consistent.
/// - A receipt's chain value must be the recomputed chain's after its seq.
public enum LogVerification {
    /// What ``verify(directory:acknowledged:receipts:checkpoint:trustedKey:)`` found.
    public struct Report: Sendable, Codable {
        public var log: LogDirectory.Verification
        /// `log.checkpoint` events found, and how many had a valid signature by the right key.
        public var checkpoints = 0
        public var validCheckpoints = 0
        /// The ids of the keys that signed the log's checkpoints, in order.
        public var keyIDs: [String] = []
        public var isClean: Bool { log.isClean }
    }

    /// Verifies the data directory at `directory`.
    public static func verify(
        directory: String,
        acknowledged: AcknowledgedMark? = nil,
        receipts: [Receipt] = [],
        checkpoint saved: LogCheckpoint? = nil,
        trustedKey: [UInt8]? = nil
    ) throws -> Report {
        let keys = KeyChain()
        var claims = receipts.map(\.claim)
        if let saved {
            claims.append(saved.claim(source: "the saved checkpoint of seq \(saved.seq) (key \(saved.keyID))"))
        }
        var retentions: [LogRetention] = []
        let logDirectory = LogDirectory(path: directory)
        var verification = try logDirectory.verify(acknowledged: acknowledged, claims: claims) { record, position in
            if record.payload.readableBytes > 2,
                record.payload.getInteger(at: record.payload.readerIndex + 1, as: UInt8.self) == EventType.logRetention.rawValue,
                case .logRetention(let retention)? = try? EventCodec.decode(record.payload)
            {
                retentions.append(retention)
            }
            return keys.inspect(record, at: position)
        }
        keys.finish(trusted: trustedKey)
        verification.damage += keys.damage
        verification.damage += retentionDamage(
            start: logDirectory.retainedStart(),
            first: try logDirectory.segmentBases().first,
            recorded: retentions
        )
        if let saved {
            var problem: String?
            if !saved.hasValidSignature {
                problem = "the saved checkpoint's signature does not hold: it was not made by key \(saved.keyID)"
            } else if !keys.seen.contains(saved.publicKey) && saved.publicKey != trustedKey {
                problem =
                    "the saved checkpoint is signed by key \(saved.keyID), which signed none of the log's checkpoints (\(keys.keyIDs.joined(separator: ", ")))"
            }
            if let problem {
                verification.damage.append(
                    LogDamage(segment: "(saved checkpoint)", offset: 0, length: 0, firstSeq: saved.seq, lastSeq: saved.seq, defect: problem)
                )
            }
        }
        if keys.checkpoints > 0 {
            verification.notes.append(
                "\(keys.checkpoints) signed checkpoints, \(keys.valid) valid, keys \(keys.keyIDs.joined(separator: " → "))"
            )
        }
        var report = Report(log: verification)
        report.checkpoints = keys.checkpoints
        report.validCheckpoints = keys.valid
        report.keyIDs = keys.keyIDs
        return report
    }

    /// A log that starts after seq 1 because retention deleted its start must say so itself: a
    /// `log.retention` event recording the deletion up to the first seq left, whose chain value
    /// is the one `retention.json` starts the chain from (the file is outside the chain; the
    /// event is inside it).
    static func retentionDamage(start: RetainedStart?, first: UInt64?, recorded: [LogRetention]) -> [LogDamage] {
        guard let start, let first, first > 1, let anchor = start.chainValue(before: first) else { return [] }
        func damage(_ defect: String) -> [LogDamage] {
            [LogDamage(segment: "retention.json", offset: 0, length: 0, firstSeq: 1, lastSeq: first - 1, defect: defect)]
        }
        // The deletion that left the log starting at `first` (after a pass that stopped half-way,
        // the one it was carrying out, which covers it).
        guard let event = recorded.first(where: { $0.lastSeq + 1 >= first && $0.firstSeq <= first }) else {
            return damage("the log starts at seq \(first), but no log.retention event records deleting the seqs before it")
        }
        if event.lastSeq + 1 == first, event.chain != anchor {
            return damage(
                "retention.json starts the chain at seq \(first) from \(anchor.hex), but the log.retention event recorded \(event.chain.hex)"
            )
        }
        return []
    }

    /// Follows the checkpoints of one verification pass: their signatures, and which keys may
    /// sign them.
    final class KeyChain {
        struct Seen {
            var recordSeq: UInt64
            var position: RecordPosition
            var checkpoint: LogCheckpoint
        }

        var found: [Seen] = []
        var damage: [LogDamage] = []
        var checkpoints: Int { found.count }
        var valid = 0
        /// The keys that signed valid checkpoints, and the ones they announced, in order.
        var order: [[UInt8]] = []
        var seen: Set<[UInt8]> = []
        var keyIDs: [String] { order.map(LogCheckpoint.keyID(of:)) }

        /// The claim of a `log.checkpoint` record (any other record makes none).
        func inspect(_ record: LogRecord, at position: RecordPosition) -> [ChainClaim] {
            // Cheap test first: the type byte of a log.checkpoint.
            guard record.payload.readableBytes > 2,
                record.payload.getInteger(at: record.payload.readerIndex + 1, as: UInt8.self) == EventType.logCheckpoint.rawValue,
                case .logCheckpoint(let checkpoint)? = try? EventCodec.decode(record.payload)
            else { return [] }
            found.append(Seen(recordSeq: record.seq, position: position, checkpoint: checkpoint))
            return [checkpoint.claim(source: "log.checkpoint at seq \(record.seq) (key \(checkpoint.keyID))")]
        }

        /// Checks every checkpoint found: its signature, and its key. With `trusted` (the
        /// server's key), the keys that may sign are it and every key that announced one of them
        /// in a valid rotation; without, the first checkpoint's key and the keys each rotation
        /// announced, in order.
        func finish(trusted: [UInt8]?) {
            func report(_ entry: Seen, _ defect: String) {
                damage.append(
                    LogDamage(
                        segment: entry.position.segment,
                        offset: entry.position.offset,
                        length: 0,
                        firstSeq: entry.recordSeq,
                        lastSeq: entry.recordSeq,
                        defect: defect
                    )
                )
            }
            let signed = found.filter { entry in
                if entry.checkpoint.hasValidSignature { return true }
                report(
                    entry,
                    "the signature of the checkpoint at seq \(entry.recordSeq) (of seq \(entry.checkpoint.seq), key \(entry.checkpoint.keyID)) does not hold"
                )
                return false
            }
            if let trusted {
                var allowed: Set<[UInt8]> = [trusted]
                for entry in signed.reversed() {
                    if let next = entry.checkpoint.nextPublicKey, allowed.contains(next) { allowed.insert(entry.checkpoint.publicKey) }
                }
                for entry in signed {
                    guard allowed.contains(entry.checkpoint.publicKey) else {
                        report(
                            entry,
                            "the checkpoint at seq \(entry.recordSeq) is signed by key \(entry.checkpoint.keyID), which is neither the server's key \(LogCheckpoint.keyID(of: trusted)) nor one it rotated from: it was re-signed"
                        )
                        continue
                    }
                    accept(entry.checkpoint)
                }
            } else {
                var current: [UInt8]?
                for entry in signed {
                    if current == nil { current = entry.checkpoint.publicKey }
                    guard entry.checkpoint.publicKey == current else {
                        report(
                            entry,
                            "the checkpoint at seq \(entry.recordSeq) is signed by key \(entry.checkpoint.keyID), which no earlier checkpoint announced (the log's key is \(LogCheckpoint.keyID(of: current ?? [])))"
                        )
                        continue
                    }
                    accept(entry.checkpoint)
                    // A rotation: every later checkpoint is signed with the announced key.
                    if let next = entry.checkpoint.nextPublicKey { current = next }
                }
            }
        }

        private func accept(_ checkpoint: LogCheckpoint) {
            valid += 1
            for key in [checkpoint.publicKey] + (checkpoint.nextPublicKey.map { [$0] } ?? []) where seen.insert(key).inserted {
                order.append(key)
            }
        }
    }
}
