import NIOCore

/// The hash chain through the records of one group commit: the value each batch stores in its
/// trailer and the value each appender's receipt carries.
///
/// Computed apart from the group's compression (``BatchCodec/compress(_:firstSeq:chained:into:)``)
/// so that the two can run on two threads: the chain depends only on the records' seqs and bytes,
/// which are fixed once the group is taken from the pending appends.
struct GroupChain: Sendable {
    /// The value after each batch's last record, in batch order: the batch's trailer.
    var afterBatch: [ChainValue]
    /// The value after each appender's last record, in the order the appends were gathered.
    var afterWaiter: [ChainValue]

    /// The chain through every record of `batches`, in order, the first record being `firstSeq`
    /// and `start` the value before it. `waiterEnds` are ascending record counts, from the start
    /// of the group, at which each appender's records end.
    init(batches: [FramedRecords], firstSeq: UInt64, start: ChainValue, waiterEnds: [Int]) {
        var afterBatch: [ChainValue] = []
        afterBatch.reserveCapacity(batches.count)
        var afterWaiter: [ChainValue] = []
        afterWaiter.reserveCapacity(waiterEnds.count)
        var value = start
        var seq = firstSeq
        var record = 0
        var nextEnd = 0
        for batch in batches {
            batch.bytes.withUnsafeReadableBytes { raw in
                var offset = 0
                while offset + RecordFrame.headerSize <= raw.count {
                    let length = Int(raw.littleEndian(at: offset, as: UInt32.self))
                    let start = offset + RecordFrame.headerSize
                    value = value.next(seq: seq, bytes: UnsafeRawBufferPointer(rebasing: raw[start..<(start + length)]))
                    seq += 1
                    record += 1
                    if nextEnd < waiterEnds.count && waiterEnds[nextEnd] == record {
                        afterWaiter.append(value)
                        nextEnd += 1
                    }
                    offset = start + length
                }
            }
            afterBatch.append(value)
        }
        self.afterBatch = afterBatch
        self.afterWaiter = afterWaiter
    }
}
