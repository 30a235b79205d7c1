import NIOCore

/// One batch of a segment file, decoded: for tools and tests that read or rewrite segment files
/// without opening the log (the tampering tests of `custody log verify` rewrite batches with a
/// valid CRC, as someone who can write the data directory could).
public struct SegmentBatch: Sendable {
    /// Where the batch starts in its segment file.
    public var offset: Int
    public var header: BatchHeader
    public var records: [LogRecord]
    /// The chain value a chained batch stores after its last record.
    public var chain: ChainValue?

    /// The batches of a segment file's bytes, from the start up to the first bytes that are not
    /// a valid batch (CRC included), codec 2 batches decoded with `dictionary` (the segment's).
    public static func parse(segment bytes: [UInt8], dictionary: LZ4Dictionary? = nil) -> [SegmentBatch] {
        var batches: [SegmentBatch] = []
        bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset + BatchHeader.size <= raw.count {
                guard case .success(let header) = BatchHeader.parse(UnsafeRawBufferPointer(rebasing: raw[offset..<(offset + BatchHeader.size)])),
                    offset + header.totalLength <= raw.count,
                    BatchHeader.checksumMatches(
                        header: UnsafeRawBufferPointer(rebasing: raw[offset..<(offset + BatchHeader.size)]),
                        payload: UnsafeRawBufferPointer(rebasing: raw[(offset + BatchHeader.size)..<(offset + header.totalLength)])
                    )
                else { return }
                let payloadStart = offset + BatchHeader.size
                let stored = UnsafeRawBufferPointer(rebasing: raw[payloadStart..<(payloadStart + Int(header.storedLength))])
                guard case .success(let records) = BatchCodec.decodeRecords(header, stored: stored, dictionary: { dictionary }) else {
                    return
                }
                let chain = header.isChained ? ChainValue.load(from: raw, at: payloadStart + Int(header.storedLength)) : nil
                batches.append(SegmentBatch(offset: offset, header: header, records: records, chain: chain))
                offset += header.totalLength
            }
        }
        return batches
    }

    /// The batch encoded again from ``records`` (their seqs counted from `header.firstSeq`),
    /// ``header``'s flags and ``chain`` (a version 2 batch when there is one), with a fresh CRC.
    public func encoded() -> [UInt8] {
        var framed = FramedRecords(capacity: 4096)
        for record in records { framed.append(record.payload, timestamp: record.timestamp) }
        var output = ByteBufferAllocator().buffer(capacity: 4096)
        BatchCodec.encode(framed, firstSeq: header.firstSeq, flags: header.flags, chain: chain, into: &output)
        return Array(output.readableBytesView)
    }
}
