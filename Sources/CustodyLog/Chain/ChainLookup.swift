/// Finds the hash chain's value after any seq of a segment log, from the values stored at the
/// ends of batches: it reads at most the batches between two index entries, and hashes only the
/// records of the batch that holds the seq (all of them, to check the result against the value
/// the batch stores).
struct ChainLookup {
    struct Segment: Sendable {
        var baseSeq: UInt64
        var index: SegmentIndex
    }

    let directory: String
    let fileSystem: any LogFileSystem
    /// The segments' dictionaries (codec 2 batches).
    let dictionaries: SegmentDictionaries
    /// Every segment, in order, with what of it is acknowledged.
    let segments: [Segment]
    /// The chain value before the first segment's first seq, when retention deleted the segments
    /// before it (``RetainedStart``); the first segment starts from zero otherwise.
    let starts: [UInt64: ChainValue]

    init(
        directory: String,
        fileSystem: any LogFileSystem,
        segments: [Segment],
        starts: [UInt64: ChainValue] = [:],
        dictionaries: SegmentDictionaries? = nil
    ) {
        self.dictionaries = dictionaries ?? SegmentDictionaries(fileSystem: fileSystem)
        self.directory = directory
        self.fileSystem = fileSystem
        self.segments = segments
        self.starts = starts
    }

    /// The chain value after record `seq`: ``ChainValue/zero`` for seq 0; nil when the log does
    /// not hold `seq`, holds it in a version 1 batch (before the chain started), or when the
    /// value cannot be known: `seq`'s batch follows a lost range that the chain ran through.
    func value(after seq: UInt64) throws -> ChainValue? {
        if seq == 0 { return .zero }
        guard let position = segments.lastIndex(where: { $0.baseSeq <= seq }) else { return nil }
        let segment = segments[position]
        guard seq < segment.index.endSeq else { return nil }
        let entries = segment.index.entries
        // The batch before the one holding seq starts at or after the entry before seq's entry.
        let entry = entries.lastIndex(where: { $0.seq <= seq }) ?? 0
        let start = entry >= 1 ? entries[entry - 1].offset : 0
        let segmentPath = joinPath(directory, SegmentName.segment(segment.baseSeq))
        let file = try fileSystem.openFile(at: segmentPath, mode: .readOnly)
        defer { try? file.close() }
        var scanner = SegmentScanner(
            file: file,
            length: segment.index.coveredLength,
            readAhead: 64 << 10,
            path: segmentPath,
            dictionaries: dictionaries
        )
        var offset = start
        // The chain value after the batch before the current one; nil until one was read.
        var before: ChainValue?
        while case .batch(let header, let at) = try scanner.batch(at: offset, check: .checksum) {
            offset = at + Int64(header.totalLength)
            guard header.lastSeq >= seq else {
                // A version 1 batch: the chain starts after it.
                before = try scanner.chainValue(of: header, at: at) ?? .zero
                continue
            }
            guard header.firstSeq <= seq, header.isChained else { return nil }
            if header.lastSeq == seq { return try scanner.chainValue(of: header, at: at) }
            var value: ChainValue
            if let before {
                value = before
            } else if position == 0 {
                value = starts[segment.baseSeq] ?? .zero
            } else {
                value = try self.value(after: segments[position - 1].index.endSeq - 1) ?? .zero
            }
            guard case .success(let records) = try scanner.records(of: header, at: at, wanted: header.firstSeq...header.lastSeq) else {
                throw LogError(.corruption, "\(SegmentName.segment(segment.baseSeq)) is damaged at byte \(at)")
            }
            var valueAtSeq: ChainValue?
            for record in records {
                value = value.next(record)
                if record.seq == seq { valueAtSeq = value }
            }
            // The value before the batch is right only if the batch's records hash from it to the
            // value the batch stores: not so after a range lost in the middle of the log, whose
            // records the chain ran through (the value is then not known).
            guard value == (try scanner.chainValue(of: header, at: at)) else { return nil }
            return valueAtSeq
        }
        return nil
    }
}
