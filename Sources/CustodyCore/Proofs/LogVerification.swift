import CustodyLog
import NIOCore

/// `custody log verify` with everything the log's bytes alone cannot say: the signature of every
/// `log.checkpoint` and the chain of keys that signed them, a checkpoint saved earlier, and
/// receipts (docs/operations.md, "Verifying the log").
///
/// Rules:
/// - Every checkpoint's Ed25519 signature must hold, and its (seq, chain) must be what the
///   recomputed chain had there.
/// - The first checkpoint's key is the log's first key; a checkpoint that names a next key
///   hands over to it; a checkpoint signed by any other key is damage. With a trusted key (the
///   server's key file), that key must be one of the log's keys.
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
        var verification = try LogDirectory(path: directory).verify(acknowledged: acknowledged, claims: claims) { record, position in
            keys.inspect(record, at: position)
        }
        verification.damage += keys.damage
        let lastSegment = "(saved checkpoint)"
        if let saved {
            if !saved.hasValidSignature {
                verification.damage.append(
                    LogDamage(
                        segment: lastSegment,
                        offset: 0,
                        length: 0,
                        firstSeq: saved.seq,
                        lastSeq: saved.seq,
                        defect: "the saved checkpoint's signature does not hold: it was not made by key \(saved.keyID)"
                    )
                )
            } else if !keys.seen.contains(saved.publicKey) && saved.publicKey != trustedKey {
                verification.damage.append(
                    LogDamage(
                        segment: lastSegment,
                        offset: 0,
                        length: 0,
                        firstSeq: saved.seq,
                        lastSeq: saved.seq,
                        defect:
                            "the saved checkpoint is signed by key \(saved.keyID), which signed none of the log's checkpoints (\(keys.order.map { LogCheckpoint.keyID(of: $0) }.joined(separator: ", ")))"
                    )
                )
            }
        }
        if let trustedKey, keys.checkpoints > 0, !keys.seen.contains(trustedKey) {
            verification.damage.append(
                LogDamage(
                    segment: "(checkpoints)",
                    offset: 0,
                    length: 0,
                    firstSeq: nil,
                    lastSeq: nil,
                    defect:
                        "the log's checkpoints are signed by \(keys.order.map { LogCheckpoint.keyID(of: $0) }.joined(separator: ", ")), not by the server's key \(LogCheckpoint.keyID(of: trustedKey)): they were re-signed"
                )
            )
        }
        if keys.checkpoints > 0 {
            verification.notes.append(
                "\(keys.checkpoints) signed checkpoints, \(keys.valid) valid, keys \(keys.order.map { LogCheckpoint.keyID(of: $0) }.joined(separator: " → "))"
            )
        }
        var report = Report(log: verification)
        report.checkpoints = keys.checkpoints
        report.validCheckpoints = keys.valid
        report.keyIDs = keys.order.map { LogCheckpoint.keyID(of: $0) }
        return report
    }

    /// Follows the checkpoints of one verification pass: their signatures and keys.
    final class KeyChain {
        /// The key the next checkpoint must be signed with (nil before the first).
        var current: [UInt8]?
        var seen: Set<[UInt8]> = []
        var order: [[UInt8]] = []
        var damage: [LogDamage] = []
        var checkpoints = 0
        var valid = 0

        /// The claim of a `log.checkpoint` record (any other record makes none).
        func inspect(_ record: LogRecord, at position: RecordPosition) -> [ChainClaim] {
            // Cheap test first: version 1, type 14.
            guard record.payload.readableBytes > 2, record.payload.getInteger(at: record.payload.readerIndex + 1, as: UInt8.self) == 14,
                case .logCheckpoint(let checkpoint)? = try? EventCodec.decode(record.payload)
            else { return [] }
            checkpoints += 1
            func report(_ defect: String) {
                damage.append(
                    LogDamage(
                        segment: position.segment,
                        offset: position.offset,
                        length: 0,
                        firstSeq: record.seq,
                        lastSeq: record.seq,
                        defect: defect
                    )
                )
            }
            guard checkpoint.hasValidSignature else {
                report("the signature of the checkpoint at seq \(record.seq) (of seq \(checkpoint.seq), key \(checkpoint.keyID)) does not hold")
                return [checkpoint.claim(source: "log.checkpoint at seq \(record.seq)")]
            }
            if current == nil { current = checkpoint.publicKey }
            guard checkpoint.publicKey == current else {
                report(
                    "the checkpoint at seq \(record.seq) is signed by key \(checkpoint.keyID), which no earlier checkpoint announced (the log's key is \(LogCheckpoint.keyID(of: current ?? [])))"
                )
                return [checkpoint.claim(source: "log.checkpoint at seq \(record.seq)")]
            }
            valid += 1
            if seen.insert(checkpoint.publicKey).inserted { order.append(checkpoint.publicKey) }
            if let announced = checkpoint.nextPublicKey {
                // A rotation: every later checkpoint is signed with the announced key.
                current = announced
                if seen.insert(announced).inserted { order.append(announced) }
            }
            return [checkpoint.claim(source: "log.checkpoint at seq \(record.seq) (key \(checkpoint.keyID))")]
        }
    }
}
