import NIOCore

/// Records encoded as the log's batches (docs/log-format.md), chained, for an engine that keeps
/// them somewhere other than segment files: one JetStream message of cluster mode holds one
/// group. The bytes are exactly the batches a segment file would hold, so every engine stores the
/// same encoding and the same hash chain.
///
/// Rules:
/// - A group's batches are chained (version 2) and their seqs are consecutive.
/// - ``init(validating:)`` checks every batch's CRC and that the seqs follow each other; it
///   does not decompress, so it is cheap enough to run on every message a node receives.
public struct BatchGroup: Sendable {
    /// The encoded batches.
    public let bytes: ByteBuffer
    public let firstSeq: UInt64
    public let lastSeq: UInt64
    public let firstTimestamp: Int64
    public let lastTimestamp: Int64
    /// The hash chain's value after the group's last record.
    public let chain: ChainValue
    /// Each batch's header and where it starts in ``bytes``.
    let batches: [(header: BatchHeader, offset: Int)]

    public var recordCount: Int { Int(lastSeq - firstSeq + 1) }

    /// One caller's records for ``encode(_:firstSeq:chain:batchBytes:)``.
    public struct Append: Sendable {
        public var payloads: [ByteBuffer]
        public var timestamp: Int64
        public init(payloads: [ByteBuffer], timestamp: Int64) {
            self.payloads = payloads
            self.timestamp = timestamp
        }
    }

    /// `appends` (each non-empty, timestamps not decreasing) as consecutive records from
    /// `firstSeq`, the chain continuing from `chain` (the value after record `firstSeq - 1`);
    /// batches close once they reach `batchBytes` of records. Returns the group and the chain's
    /// value after each append's last record, in the order given (what each receipt carries).
    public static func encode(
        _ appends: [Append],
        firstSeq: UInt64,
        chain: ChainValue,
        batchBytes: Int = 64 << 10
    ) -> (group: BatchGroup, appendChains: [ChainValue]) {
        precondition(!appends.isEmpty && appends.allSatisfy { !$0.payloads.isEmpty }, "a group holds at least one record per append")
        let limit = max(1, min(batchBytes, 32 << 20))
        var framed: [FramedRecords] = []
        var ends: [Int] = []
        var records = 0
        var bytes = 0
        for append in appends {
            for payload in append.payloads {
                if framed.isEmpty || framed[framed.count - 1].bytes.readableBytes >= limit {
                    framed.append(FramedRecords(capacity: min(limit, 4096)))
                }
                framed[framed.count - 1].append(payload, timestamp: append.timestamp)
                bytes += payload.readableBytes + RecordFrame.headerSize
            }
            records += append.payloads.count
            ends.append(records)
        }
        let groupChain = GroupChain(batches: framed, firstSeq: firstSeq, start: chain, waiterEnds: ends)
        let capacity = bytes + framed.count * (BatchHeader.size + ChainValue.byteCount) + 64
        // A group stands alone (a JetStream message): never compressed against a dictionary.
        var compressed = SegmentLog.CompressedGroup(framed, firstSeq: firstSeq, chained: true, compression: .lz4, capacity: capacity)
        let sealed = compressed.seal(flags: { position, count in position == count - 1 ? BatchHeader.flagEndOfWrite : 0 }, chain: groupChain)
        let group = BatchGroup(
            bytes: compressed.output,
            firstSeq: firstSeq,
            lastSeq: firstSeq + UInt64(records) - 1,
            firstTimestamp: appends[0].timestamp,
            lastTimestamp: appends[appends.count - 1].timestamp,
            chain: groupChain.afterBatch[groupChain.afterBatch.count - 1],
            batches: sealed.map { ($0.header, $0.offset) }
        )
        return (group, groupChain.afterWaiter)
    }

    private init(
        bytes: ByteBuffer,
        firstSeq: UInt64,
        lastSeq: UInt64,
        firstTimestamp: Int64,
        lastTimestamp: Int64,
        chain: ChainValue,
        batches: [(header: BatchHeader, offset: Int)]
    ) {
        self.bytes = bytes
        self.firstSeq = firstSeq
        self.lastSeq = lastSeq
        self.firstTimestamp = firstTimestamp
        self.lastTimestamp = lastTimestamp
        self.chain = chain
        self.batches = batches
    }

    /// The group held in `bytes`: fails with a `corruption` ``LogError`` unless they are one or
    /// more whole chained batches with valid CRCs and consecutive seqs, and nothing else.
    public init(validating bytes: ByteBuffer) throws(LogError) {
        var batches: [(header: BatchHeader, offset: Int)] = []
        var chain = ChainValue.zero
        let defect: String? = bytes.withUnsafeReadableBytes { raw -> String? in
            var offset = 0
            while offset < raw.count {
                guard offset + BatchHeader.size <= raw.count else { return "a batch header is cut at byte \(offset)" }
                let headerBytes = UnsafeRawBufferPointer(rebasing: raw[offset..<(offset + BatchHeader.size)])
                let header: BatchHeader
                switch BatchHeader.parse(headerBytes) {
                case .success(let parsed): header = parsed
                case .failure(let defect): return "the batch at byte \(offset) is not valid: \(defect)"
                }
                guard header.isChained else { return "the batch at byte \(offset) carries no chain value" }
                guard offset + header.totalLength <= raw.count else { return "the batch at byte \(offset) is cut" }
                let body = UnsafeRawBufferPointer(rebasing: raw[(offset + BatchHeader.size)..<(offset + header.totalLength)])
                guard BatchHeader.checksumMatches(header: headerBytes, payload: body) else { return "the batch at byte \(offset) fails its CRC" }
                if let previous = batches.last?.header {
                    guard header.firstSeq == previous.endSeq, header.firstTimestamp >= previous.lastTimestamp else {
                        return "the batch at byte \(offset) does not follow the one before it"
                    }
                }
                chain = ChainValue.load(from: body, at: Int(header.storedLength))
                batches.append((header, offset))
                offset += header.totalLength
            }
            return batches.isEmpty ? "there is no batch" : nil
        }
        if let defect { throw LogError(.corruption, "a stored batch group is damaged: \(defect)") }
        self.bytes = bytes
        self.batches = batches
        firstSeq = batches[0].header.firstSeq
        lastSeq = batches[batches.count - 1].header.lastSeq
        firstTimestamp = batches[0].header.firstTimestamp
        lastTimestamp = batches[batches.count - 1].header.lastTimestamp
        self.chain = chain
    }

    /// The group's records whose seqs are in `wanted` (all when nil), in seq order.
    public func records(_ wanted: ClosedRange<UInt64>? = nil) throws(LogError) -> [LogRecord] {
        var records: [LogRecord] = []
        for (header, offset) in batches {
            if let wanted, header.lastSeq < wanted.lowerBound || header.firstSeq > wanted.upperBound { continue }
            let decoded = bytes.withUnsafeReadableBytes { raw in
                let start = offset + BatchHeader.size
                return BatchCodec.decodeRecords(
                    header,
                    stored: UnsafeRawBufferPointer(rebasing: raw[start..<(start + Int(header.storedLength))]),
                    wanted: wanted
                )
            }
            switch decoded {
            case .success(let batch): records += batch
            case .failure(let defect):
                throw LogError(.corruption, "the batch of seqs \(header.firstSeq)...\(header.lastSeq) does not decode: \(defect)")
            }
        }
        return records
    }

    /// The chain's value after record `seq` of the group, `before` being the value before the
    /// group's first record; nil when `seq` is not in the group.
    public func chainValue(after seq: UInt64, before: ChainValue) throws(LogError) -> ChainValue? {
        guard seq >= firstSeq && seq <= lastSeq else { return nil }
        if seq == lastSeq { return chain }
        var value = before
        for record in try records(firstSeq...seq) { value = value.next(record) }
        return value
    }

    /// The first seq of the group whose timestamp is at or after `timestamp`, nil when none is.
    public func firstSeq(atOrAfter timestamp: Int64) throws(LogError) -> UInt64? {
        guard lastTimestamp >= timestamp else { return nil }
        guard firstTimestamp < timestamp else { return firstSeq }
        for (header, _) in batches where header.lastTimestamp >= timestamp {
            if header.firstTimestamp >= timestamp { return header.firstSeq }
            return try records(header.firstSeq...header.lastSeq).first { $0.timestamp >= timestamp }?.seq
        }
        return nil
    }
}
