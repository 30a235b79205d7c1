import CustodyLog
import NIOCore

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// What a client needs to check offline that the log holds event `seq` with its bytes under a
/// signed checkpoint (docs/api.md, "Custody proofs"): the chain value before `seq`, the bytes of
/// every record from `seq` to the checkpoint's seq, and the checkpoint.
///
/// ``verify(trusting:)`` recomputes the chain from ``chainBefore`` over the records and
/// requires it to reach the checkpoint's chain value at the checkpoint's seq, and the
/// checkpoint's signature to hold. A receipt `(s, c)` is checked with the proof of `s + 1`: its
/// ``chainBefore`` must be `c`.
public struct LogProof: Sendable, Hashable {
    public struct Record: Sendable, Hashable {
        public var seq: UInt64
        public var bytes: [UInt8]

        public init(seq: UInt64, bytes: [UInt8]) {
            self.seq = seq
            self.bytes = bytes
        }
    }

    public var seq: UInt64
    /// The chain value after `seq - 1`.
    public var chainBefore: ChainValue
    /// The records `seq` … `checkpoint.seq`, in seq order.
    public var records: [Record]
    public var checkpoint: LogCheckpoint
    /// The seq of the `log.checkpoint` event, when known.
    public var checkpointRecordSeq: UInt64?

    public init(seq: UInt64, chainBefore: ChainValue, records: [Record], checkpoint: LogCheckpoint, checkpointRecordSeq: UInt64?) {
        self.seq = seq
        self.chainBefore = chainBefore
        self.records = records
        self.checkpoint = checkpoint
        self.checkpointRecordSeq = checkpointRecordSeq
    }

    /// Why a proof does not prove what it says.
    public struct Failure: Error, Sendable, Hashable, CustomStringConvertible {
        public var description: String
    }

    /// Checks the proof; with `publicKey`, also that the checkpoint is signed by that key.
    /// Returns the records it proves.
    @discardableResult
    public func verify(trusting publicKey: [UInt8]? = nil) throws(Failure) -> [Record] {
        guard let first = records.first, first.seq == seq else {
            throw Failure(description: "the proof's records do not start at seq \(seq)")
        }
        var chain = chainBefore
        var previous: UInt64?
        for record in records {
            if let previous, record.seq <= previous { throw Failure(description: "the proof's records are not in seq order at seq \(record.seq)") }
            previous = record.seq
            chain = record.bytes.withUnsafeBytes { chain.next(seq: record.seq, bytes: $0) }
        }
        guard previous == checkpoint.seq else {
            throw Failure(description: "the proof's records end at seq \(previous ?? 0), not at the checkpoint's seq \(checkpoint.seq)")
        }
        guard chain == checkpoint.chain else {
            throw Failure(
                description: "the records hash to \(chain.hex) at seq \(checkpoint.seq), not to the checkpoint's \(checkpoint.chain.hex)"
            )
        }
        guard checkpoint.hasValidSignature else { throw Failure(description: "the checkpoint's signature does not hold") }
        if let publicKey, publicKey != checkpoint.publicKey {
            throw Failure(
                description: "the checkpoint is signed by key \(checkpoint.keyID), not by the trusted key \(LogCheckpoint.keyID(of: publicKey))"
            )
        }
        return records
    }

    /// Whether `receipt` is consistent with this proof: the proof holds the receipt's seq's
    /// successor with the receipt's chain value before it, or the receipt is the checkpoint's.
    public func confirms(_ receipt: Receipt) -> Bool {
        if receipt.seq + 1 == seq { return chainBefore == receipt.chain }
        if receipt.seq == checkpoint.seq { return checkpoint.chain == receipt.chain }
        var chain = chainBefore
        for record in records {
            chain = record.bytes.withUnsafeBytes { chain.next(seq: record.seq, bytes: $0) }
            if record.seq == receipt.seq { return chain == receipt.chain }
        }
        return false
    }

    // MARK: JSON

    /// `{"seq", "chain_before", "records": [{"seq", "bytes": base64}], "checkpoint": {…}}`.
    public var jsonValue: JSONValue {
        .object([
            "seq": .integer(Int64(bitPattern: seq)), "chain_before": .string(chainBefore.hex),
            "records": .array(
                records.map { .object(["seq": .integer(Int64(bitPattern: $0.seq)), "bytes": .string(Data($0.bytes).base64EncodedString())]) }
            ),
            "checkpoint": checkpoint.jsonValue(recordSeq: checkpointRecordSeq),
        ])
    }

    /// A proof as ``jsonValue`` writes it; throws ``CoreError/Code/invalidArgument`` naming the
    /// field that is wrong. It does not check the proof (``verify(trusting:)`` does).
    public init(json: JSONValue) throws(CoreError) {
        guard case .object(let object) = json else { throw CoreError.invalidArgument("proof", "must be a JSON object") }
        guard case .integer(let seq) = object["seq"] ?? .null, seq > 0 else { throw CoreError.invalidArgument("seq", "must be a positive integer") }
        guard case .string(let before) = object["chain_before"] ?? .null, let chainBefore = ChainValue(hex: before) else {
            throw CoreError.invalidArgument("chain_before", "must be 64 hex digits")
        }
        guard case .array(let list) = object["records"] ?? .null else { throw CoreError.invalidArgument("records", "must be an array") }
        var records: [Record] = []
        records.reserveCapacity(list.count)
        for (position, item) in list.enumerated() {
            guard case .object(let record) = item, case .integer(let recordSeq) = record["seq"] ?? .null, recordSeq > 0,
                case .string(let text) = record["bytes"] ?? .null, let bytes = Data(base64Encoded: text)
            else { throw CoreError.invalidArgument("records[\(position)]", "must be {\"seq\": positive integer, \"bytes\": base64}") }
            records.append(Record(seq: UInt64(recordSeq), bytes: Array(bytes)))
        }
        let checkpointJSON = object["checkpoint"] ?? .null
        let checkpoint = try LogCheckpoint(json: checkpointJSON)
        var recordSeq: UInt64?
        if case .object(let inner) = checkpointJSON, case .integer(let value) = inner["checkpoint_seq"] ?? .null, value > 0 {
            recordSeq = UInt64(value)
        }
        self.init(seq: UInt64(seq), chainBefore: chainBefore, records: records, checkpoint: checkpoint, checkpointRecordSeq: recordSeq)
    }
}
