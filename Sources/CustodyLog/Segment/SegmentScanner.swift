/// Reads a segment file batch by batch, through a read-ahead window, and checks what it reads.
///
/// It is the one place that decides whether bytes are a valid batch: recovery, `verify`, the
/// index rebuild and every reader go through it.
struct SegmentScanner {
    /// How thoroughly each batch is checked.
    enum Check {
        /// Header fields only (walks a region already known to be good).
        case header
        /// Header and CRC-32C over header and payload.
        case checksum
    }

    enum Step {
        case batch(BatchHeader, offset: Int64)
        /// No more bytes: the segment ends cleanly at `offset`.
        case end(offset: Int64)
        /// The bytes at `offset` are not a valid batch.
        case damaged(offset: Int64, defect: BatchHeader.Defect)
    }

    let file: any LogFile
    /// The segment's length as far as this scanner is concerned (bytes past it are not read).
    let length: Int64
    private var window: [UInt8] = []
    private var windowStart: Int64 = 0
    private let readAhead: Int

    /// Where a codec 2 batch's dictionary comes from: the segment's, looked up by its path.
    private let dictionaries: SegmentDictionaries?
    private let path: String

    /// A scanner of `file`, the segment at `path`; `dictionaries` gives the segment's dictionary
    /// to ``records(of:at:wanted:)`` (without, a codec 2 batch's records do not decode).
    init(file: any LogFile, length: Int64, readAhead: Int = 1 << 20, path: String = "", dictionaries: SegmentDictionaries? = nil) {
        self.file = file
        self.length = length
        self.readAhead = readAhead
        self.path = path
        self.dictionaries = dictionaries
    }

    /// Makes `count` bytes at `offset` available in the window; false when the segment is shorter.
    private mutating func ensure(_ offset: Int64, _ count: Int) throws -> Bool {
        guard offset >= 0, offset + Int64(count) <= length else { return false }
        if offset >= windowStart && offset + Int64(count) <= windowStart + Int64(window.count) { return true }
        let want = Int(min(Int64(max(count, readAhead)), length - offset))
        window = try file.read(count: want, at: offset)
        windowStart = offset
        return window.count >= count
    }

    /// Runs `body` over `count` bytes at `offset`, which `ensure` has made available.
    private func withBytes<R>(_ offset: Int64, _ count: Int, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        let start = Int(offset - windowStart)
        return try window.withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0[start..<(start + count)])) }
    }

    /// Reads the batch at `offset`. `expectedSeq`, when given, is the seq the batch must start at.
    mutating func batch(at offset: Int64, check: Check, expectedSeq: UInt64? = nil) throws -> Step {
        if offset == length { return .end(offset: offset) }
        guard try ensure(offset, min(BatchHeader.size, Int(length - offset))), offset + Int64(BatchHeader.size) <= length else {
            return .damaged(offset: offset, defect: .truncated)
        }
        let parsed = withBytes(offset, BatchHeader.size) { BatchHeader.parse($0) }
        let header: BatchHeader
        switch parsed {
        case .failure(let defect): return .damaged(offset: offset, defect: defect)
        case .success(let h): header = h
        }
        guard offset + Int64(header.totalLength) <= length else { return .damaged(offset: offset, defect: .truncated) }
        if check == .checksum {
            guard try ensure(offset, header.totalLength) else { return .damaged(offset: offset, defect: .truncated) }
            let matches = withBytes(offset, header.totalLength) { raw in
                BatchHeader.checksumMatches(
                    header: UnsafeRawBufferPointer(rebasing: raw[0..<BatchHeader.size]),
                    payload: UnsafeRawBufferPointer(rebasing: raw[BatchHeader.size...])
                )
            }
            guard matches else { return .damaged(offset: offset, defect: .checksumMismatch) }
        }
        if let expectedSeq, header.firstSeq != expectedSeq {
            return .damaged(offset: offset, defect: .unexpectedSeq(expected: expectedSeq, found: header.firstSeq))
        }
        return .batch(header, offset: offset)
    }

    /// Decodes the records of a batch that `batch(at:check:)` returned.
    /// Only the records whose seqs are in `wanted`, when given.
    mutating func records(
        of header: BatchHeader,
        at offset: Int64,
        wanted: ClosedRange<UInt64>? = nil
    ) throws -> Result<
        [LogRecord], BatchHeader.Defect
    > {
        guard try ensure(offset, header.totalLength) else { return .failure(.truncated) }
        let (dictionaries, path) = (dictionaries, path)
        return withBytes(offset + Int64(BatchHeader.size), Int(header.storedLength)) {
            BatchCodec.decodeRecords(header, stored: $0, wanted: wanted) { dictionaries?.dictionary(forSegmentAt: path) }
        }
    }

    /// The chain value stored after a chained batch's payload; nil for a version 1 batch.
    mutating func chainValue(of header: BatchHeader, at offset: Int64) throws -> ChainValue? {
        guard header.isChained, try ensure(offset, header.totalLength) else { return nil }
        return withBytes(offset + Int64(BatchHeader.size) + Int64(header.storedLength), ChainValue.byteCount) {
            ChainValue.load(from: $0, at: 0)
        }
    }

    /// The first offset after `offset` where a whole batch passes its checksum and starts at a
    /// seq no lower than `minimumSeq`, or nil. Used after damage, to tell a torn tail (nothing
    /// valid follows) from damage in the middle of the log (valid batches follow).
    mutating func nextValidBatch(after offset: Int64, minimumSeq: UInt64) throws -> (BatchHeader, Int64)? {
        var position = offset + 1
        let magic: [UInt8] = [0x43, 0x42, 0x41, 0x54]  // "CBAT"
        while position + Int64(BatchHeader.size) <= length {
            guard try ensure(position, min(Int(length - position), max(readAhead, BatchHeader.size))) else { return nil }
            // Search the window for the magic.
            let windowEnd = windowStart + Int64(window.count)
            var found: Int64?
            window.withUnsafeBytes { raw in
                var i = Int(position - windowStart)
                let last = raw.count - 4
                while i <= last {
                    if raw[i] == magic[0] && raw[i + 1] == magic[1] && raw[i + 2] == magic[2] && raw[i + 3] == magic[3] {
                        found = windowStart + Int64(i)
                        return
                    }
                    i += 1
                }
            }
            guard let candidate = found else {
                // Keep the last 3 bytes: the magic may straddle the window's end.
                position = max(position + 1, windowEnd - 3)
                if windowEnd >= length { return nil }
                continue
            }
            if case .batch(let header, _) = try batch(at: candidate, check: .checksum), header.firstSeq >= minimumSeq {
                return (header, candidate)
            }
            position = candidate + 1
        }
        return nil
    }
}
