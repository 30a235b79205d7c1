import NIOCore
import Synchronization

/// What a group commit hands between the writers' threads (docs/architecture.md, "The segment
/// log's writer"): the group compressed on one thread while its chain is computed on the other
/// (``GroupChain``), then sealed and written.
extension SegmentLog {
    /// Batches compressed into the one buffer a group commit writes, not yet sealed
    /// (``BatchCodec/compress(_:firstSeq:chained:into:)``).
    struct CompressedGroup: Sendable {
        var output: ByteBuffer
        var unsealed: [BatchCodec.UnsealedBatch] = []

        /// `batches` compressed one after the other as `compression` says, the first record
        /// being `firstSeq`.
        init(_ batches: [FramedRecords], firstSeq: UInt64, chained: Bool, compression: BatchCompression, capacity: Int) {
            output = ByteBufferAllocator().buffer(capacity: capacity)
            unsealed.reserveCapacity(batches.count)
            var seq = firstSeq
            for batch in batches {
                unsealed.append(BatchCodec.compress(batch, firstSeq: seq, chained: chained, compression: compression, into: &output))
                seq += UInt64(batch.count)
            }
        }

        /// Writes every batch's flags, chain trailer (from `chain`, which a chained group must be
        /// given) and checksum; returns the sealed batches.
        mutating func seal(flags: (_ position: Int, _ count: Int) -> UInt16, chain: GroupChain?) -> [BatchCodec.UnsealedBatch] {
            for position in unsealed.indices {
                BatchCodec.seal(&unsealed[position], flags: flags(position, unsealed.count), chain: chain?.afterBatch[position], in: &output)
            }
            return unsealed
        }
    }

    /// What a group commit's write did.
    struct WrittenGroup: Sendable {
        /// Each batch's header and where it starts in the segment file.
        var headers: [(BatchHeader, Int64)]
        /// The chain value after each appender's records (none when the chain is off).
        var receiptChains: [ChainValue]
        var syncNanoseconds: Int64
    }

    /// Passes a value from one closure on the writers' threads to the next without a copy: a
    /// ``CompressedGroup``'s buffer is copy-on-write, and one still referenced by the closure
    /// that made it would be copied whole when the next one seals it. The lock is held only to
    /// move the value in or out.
    final class Handoff<Value: Sendable>: Sendable {
        private let slot: Mutex<Value?>

        init(_ value: sending Value) {
            slot = Mutex(value)
        }

        /// The value; it may be taken once.
        func take() -> Value {
            slot.withLock { value in
                guard let taken = value.take() else { preconditionFailure("a handed-off value is taken once") }
                return taken
            }
        }
    }
}
