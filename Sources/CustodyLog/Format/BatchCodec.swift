import NIOCore

/// Records framed for a batch but not yet given seqs: what concurrent appends accumulate while
/// the previous group is being written.
struct FramedRecords: Sendable {
    var bytes: ByteBuffer
    var count = 0
    var firstTimestamp: Int64 = 0
    var lastTimestamp: Int64 = 0

    init(capacity: Int) {
        bytes = ByteBufferAllocator().buffer(capacity: capacity)
    }

    var isEmpty: Bool { count == 0 }

    mutating func append(_ payload: ByteBuffer, timestamp: Int64) {
        if count == 0 { firstTimestamp = timestamp }
        lastTimestamp = timestamp
        count += 1
        bytes.writeInteger(UInt32(payload.readableBytes), endianness: .little)
        bytes.writeInteger(timestamp, endianness: .little)
        bytes.writeImmutableBuffer(payload)
    }
}

/// How a batch's payload is compressed when that makes it smaller (stored as it is otherwise).
enum BatchCompression: Sendable {
    /// LZ4 alone (codec 1).
    case lz4
    /// LZ4 against the segment's dictionary (codec 2).
    case dictionary(LZ4Dictionary)
    /// LZ4HC against the segment's dictionary (codec 2, read as the above): while the log is
    /// quiet.
    case highCompression(LZ4HighCompressionDictionary)
}

/// Turns framed records into batch bytes and back.
enum BatchCodec {
    /// Payloads larger than this are compressed without the dictionary whatever the
    /// ``BatchCompression``: they hold enough to repeat by themselves (measured: 6.12× alone,
    /// 6.16× with it, for 64 KiB batches), and LZ4 against an external dictionary is slower.
    static let dictionaryPayloadLimit = 32 << 10

    /// Appends one encoded batch (header, payload and, when `chain` is given, the chain value
    /// after its last record: a version 2 batch; a version 1 batch without) to `output`. The
    /// payload is LZ4-compressed when that makes it smaller, stored as it is otherwise.
    @discardableResult
    static func encode(
        _ records: FramedRecords,
        firstSeq: UInt64,
        flags: UInt16,
        chain: ChainValue?,
        compression: BatchCompression = .lz4,
        into output: inout ByteBuffer
    ) -> BatchHeader {
        var batch = compress(records, firstSeq: firstSeq, chained: chain != nil, compression: compression, into: &output)
        seal(&batch, flags: flags, chain: chain, in: &output)
        return batch.header
    }

    /// A batch whose payload is in a group's output, its header and chain trailer not written
    /// yet: what ``compress(_:firstSeq:chained:into:)`` leaves for
    /// ``seal(_:flags:chain:in:)``, so that a group's chain can be computed while it is
    /// compressed, and a group compressed before it is known which of its batches is the last
    /// one written.
    struct UnsealedBatch: Sendable {
        /// Where the batch's header starts in the output.
        var offset: Int
        /// The header, its flags and checksum not yet set.
        var header: BatchHeader
    }

    /// Appends a batch to `output` with its header (and, when `chained`, its chain trailer) left
    /// as zeros: the payload compressed as `compression` says when that makes it smaller, stored
    /// as it is otherwise. The batch is not valid until
    /// ``seal(_:flags:chain:in:)`` has written them.
    static func compress(
        _ records: FramedRecords,
        firstSeq: UInt64,
        chained: Bool,
        compression: BatchCompression = .lz4,
        into output: inout ByteBuffer
    ) -> UnsealedBatch {
        let offset = output.writerIndex
        let trailer = chained ? ChainValue.byteCount : 0
        var header: BatchHeader?
        records.bytes.withUnsafeReadableBytes { payload in
            let bound = LZ4Block.compressBound(payload.count)
            output.writeWithUnsafeMutableBytes(minimumWritableBytes: BatchHeader.size + max(bound, payload.count) + trailer) { destination in
                let body = UnsafeMutableRawBufferPointer(rebasing: destination[BatchHeader.size...])
                var codec = BatchHeader.Codec.stored
                var storedLength = payload.count
                let room = UnsafeMutableRawBufferPointer(rebasing: body[0..<bound])
                // Only keep the compressed form when it saves space.
                let againstDictionary: Int? =
                    switch compression {
                    case .lz4: nil
                    case _ where payload.count > Self.dictionaryPayloadLimit: nil
                    case .dictionary(let dictionary): dictionary.compress(payload, into: room)
                    case .highCompression(let dictionary): dictionary.compress(payload, into: room)
                    }
                if let compressed = againstDictionary, compressed < payload.count {
                    codec = .lz4Dictionary
                    storedLength = compressed
                } else if let compressed = LZ4Block.compress(payload, into: room), compressed < payload.count {
                    codec = .lz4
                    storedLength = compressed
                } else {
                    body.copyMemory(from: payload)
                }
                header = BatchHeader(
                    version: chained ? BatchHeader.chainedVersion : 1,
                    codec: codec,
                    flags: 0,
                    firstSeq: firstSeq,
                    recordCount: UInt32(records.count),
                    uncompressedLength: UInt32(payload.count),
                    firstTimestamp: records.firstTimestamp,
                    lastTimestamp: records.lastTimestamp,
                    storedLength: UInt32(storedLength),
                    checksum: 0
                )
                return BatchHeader.size + storedLength + trailer
            }
        }
        return UnsealedBatch(offset: offset, header: header!)
    }

    /// Writes a compressed batch's chain trailer (`chain`, which a chained batch must be given
    /// and an unchained one must not) and its header, with `flags` and the checksum over both.
    static func seal(_ batch: inout UnsealedBatch, flags: UInt16, chain: ChainValue?, in output: inout ByteBuffer) {
        precondition((chain != nil) == batch.header.isChained, "a chained batch is sealed with its chain value, an unchained one without")
        let trailer = chain == nil ? 0 : ChainValue.byteCount
        let storedLength = Int(batch.header.storedLength)
        let offset = batch.offset - output.readerIndex
        batch.header.flags = flags
        output.withUnsafeMutableReadableBytes { raw in
            let destination = UnsafeMutableRawBufferPointer(rebasing: raw[offset..<(offset + BatchHeader.size + storedLength + trailer)])
            let body = UnsafeMutableRawBufferPointer(rebasing: destination[BatchHeader.size...])
            chain?.store(into: body, at: storedLength)
            batch.header.checksum = batch.header.write(
                into: UnsafeMutableRawBufferPointer(rebasing: destination[0..<BatchHeader.size]),
                payload: UnsafeRawBufferPointer(body)
            )
        }
    }

    /// Decodes a batch's records. `stored` is the payload as it is on disk; its checksum must
    /// already have been verified. Fails when the payload does not hold exactly the records the
    /// header announces.
    /// The records of a batch whose seqs are in `wanted` (all of them when nil). Every record's
    /// framing is checked whatever `wanted` is; only the wanted ones are sliced out.
    ///
    /// A codec 2 batch needs its segment's dictionary: `dictionary` is asked for it only then, and
    /// the batch is ``BatchHeader/Defect/missingDictionary`` when it gives none.
    static func decodeRecords(
        _ header: BatchHeader,
        stored: UnsafeRawBufferPointer,
        wanted: ClosedRange<UInt64>? = nil,
        dictionary: () -> LZ4Dictionary? = { nil }
    ) -> Result<[LogRecord], BatchHeader.Defect> {
        var payload = ByteBufferAllocator().buffer(capacity: Int(header.uncompressedLength))
        switch header.codec {
        case .stored:
            payload.writeBytes(stored)
        case .lz4, .lz4Dictionary:
            // Codec 2 decompresses against the segment's dictionary, codec 1 alone.
            let segmentDictionary = header.codec == .lz4Dictionary ? dictionary() : nil
            guard header.codec == .lz4 || segmentDictionary != nil else { return .failure(.missingDictionary) }
            var ok = false
            payload.writeWithUnsafeMutableBytes(minimumWritableBytes: Int(header.uncompressedLength)) { destination in
                let output = UnsafeMutableRawBufferPointer(rebasing: destination[0..<Int(header.uncompressedLength)])
                ok = segmentDictionary?.decompress(stored, into: output) ?? LZ4Block.decompress(stored, into: output)
                return ok ? Int(header.uncompressedLength) : 0
            }
            guard ok else { return .failure(.badPayload) }
        }
        var records: [LogRecord] = []
        let wanted = wanted ?? header.firstSeq...UInt64.max
        records.reserveCapacity(Int(min(UInt64(header.recordCount), wanted.upperBound &- max(wanted.lowerBound, header.firstSeq) &+ 1)))
        var seq = header.firstSeq
        var count = 0
        var firstTimestamp: Int64?
        var previousTimestamp = header.firstTimestamp
        while payload.readableBytes > 0 {
            guard count < Int(header.recordCount),
                let length = payload.readInteger(endianness: .little, as: UInt32.self),
                let timestamp = payload.readInteger(endianness: .little, as: Int64.self),
                timestamp >= previousTimestamp,
                Int(length) <= payload.readableBytes
            else { return .failure(.badPayload) }
            if wanted.contains(seq) {
                records.append(LogRecord(seq: seq, timestamp: timestamp, payload: payload.readSlice(length: Int(length))!))
            } else {
                payload.moveReaderIndex(forwardBy: Int(length))
            }
            if firstTimestamp == nil { firstTimestamp = timestamp }
            previousTimestamp = timestamp
            seq += 1
            count += 1
        }
        guard count == Int(header.recordCount), firstTimestamp == header.firstTimestamp, previousTimestamp == header.lastTimestamp
        else { return .failure(.badPayload) }
        return .success(records)
    }
}
