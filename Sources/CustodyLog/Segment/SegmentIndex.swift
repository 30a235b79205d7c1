/// A sparse index of one segment: for some batches, the batch's first seq, its byte offset in
/// the segment file, and its first timestamp. Lookups find the nearest entry at or before a seq
/// (or time) and scan forward from there, so a lookup never reads more than the index interval.
///
/// Persisted for sealed segments as two files (`.index`: seq → offset, `.timeindex`:
/// timestamp → seq) that carry the segment length they describe, so a stale index (the segment
/// changed after it was written) is recognised and rebuilt.
struct SegmentIndex: Sendable, Equatable {
    struct Entry: Sendable, Equatable {
        var seq: UInt64
        var offset: Int64
        var timestamp: Int64
    }

    var entries: [Entry] = []
    /// Bytes of the segment file that the index covers (the valid length).
    var coveredLength: Int64 = 0
    /// The seq after the segment's last record (the base seq when empty).
    var endSeq: UInt64
    var firstTimestamp: Int64? { entries.first?.timestamp }
    var lastTimestamp: Int64 = 0

    init(baseSeq: UInt64) { endSeq = baseSeq }

    /// Records a batch that was appended at `offset` (entries at least `interval` bytes apart).
    mutating func noteBatch(_ header: BatchHeader, at offset: Int64, interval: Int64) {
        if let last = entries.last {
            if offset - last.offset >= interval {
                entries.append(Entry(seq: header.firstSeq, offset: offset, timestamp: header.firstTimestamp))
            }
        } else {
            entries.append(Entry(seq: header.firstSeq, offset: offset, timestamp: header.firstTimestamp))
        }
        coveredLength = offset + Int64(header.totalLength)
        endSeq = header.endSeq
        lastTimestamp = header.lastTimestamp
    }

    /// The offset to start scanning from to find `seq`.
    func offset(forSeq seq: UInt64) -> Int64 {
        // The last entry with entry.seq <= seq.
        var low = 0
        var high = entries.count
        while low < high {
            let middle = (low + high) / 2
            if entries[middle].seq <= seq { low = middle + 1 } else { high = middle }
        }
        return low == 0 ? 0 : entries[low - 1].offset
    }

    /// The offset to start scanning from to find the first record at or after `timestamp`.
    /// Timestamps never decrease along the log, so every batch before the returned one ends before
    /// `timestamp`... except the one just before, which may straddle it: start there.
    func offset(forTimestamp timestamp: Int64) -> Int64 {
        var low = 0
        var high = entries.count
        while low < high {
            let middle = (low + high) / 2
            if entries[middle].timestamp < timestamp { low = middle + 1 } else { high = middle }
        }
        return low == 0 ? 0 : entries[low - 1].offset
    }
}

/// The two index files of a sealed segment.
enum SegmentIndexFile {
    static let offsetMagic: UInt32 = 0x5844_4943  // "CIDX"
    static let timeMagic: UInt32 = 0x5849_5443  // "CTIX"
    static let headerSize = 48
    static let version: UInt8 = 1

    static func encode(_ index: SegmentIndex, baseSeq: UInt64, time: Bool) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(headerSize + index.entries.count * 16)
        bytes.appendLittleEndian(time ? timeMagic : offsetMagic)
        bytes.append(version)
        bytes.append(contentsOf: [0, 0, 0])
        bytes.appendLittleEndian(baseSeq)
        bytes.appendLittleEndian(index.coveredLength)
        bytes.appendLittleEndian(index.endSeq)
        bytes.appendLittleEndian(index.lastTimestamp)
        bytes.appendLittleEndian(UInt32(index.entries.count))
        for entry in index.entries {
            if time {
                bytes.appendLittleEndian(entry.timestamp)
                bytes.appendLittleEndian(entry.seq)
            } else {
                bytes.appendLittleEndian(entry.seq)
                bytes.appendLittleEndian(entry.offset)
            }
        }
        let crc = bytes.withUnsafeBytes { raw in
            CRC32C.update(CRC32C.update(0, UnsafeRawBufferPointer(rebasing: raw[0..<44])), UnsafeRawBufferPointer(rebasing: raw[44...]))
        }
        bytes.insert(contentsOf: [0, 0, 0, 0], at: 44)
        bytes.withUnsafeMutableBytes { $0.storeLittleEndian(crc, at: 44) }
        return bytes
    }

    struct Decoded {
        var baseSeq: UInt64
        var coveredLength: Int64
        var endSeq: UInt64
        var lastTimestamp: Int64
        /// (seq, offset) or (timestamp, seq).
        var pairs: [(Int64, Int64)]
    }

    static func decode(_ bytes: [UInt8], time: Bool) -> Decoded? {
        bytes.withUnsafeBytes { raw -> Decoded? in
            guard raw.count >= headerSize,
                raw.littleEndian(at: 0, as: UInt32.self) == (time ? timeMagic : offsetMagic),
                raw[4] == version
            else { return nil }
            let count = Int(raw.littleEndian(at: 40, as: UInt32.self))
            guard raw.count == headerSize + count * 16 else { return nil }
            let crc = CRC32C.update(
                CRC32C.update(0, UnsafeRawBufferPointer(rebasing: raw[0..<44])),
                UnsafeRawBufferPointer(rebasing: raw[48...])
            )
            guard crc == raw.littleEndian(at: 44, as: UInt32.self) else { return nil }
            var pairs: [(Int64, Int64)] = []
            pairs.reserveCapacity(count)
            for i in 0..<count {
                let at = headerSize + i * 16
                pairs.append((raw.littleEndian(at: at), raw.littleEndian(at: at + 8)))
            }
            return Decoded(
                baseSeq: raw.littleEndian(at: 8),
                coveredLength: raw.littleEndian(at: 16),
                endSeq: raw.littleEndian(at: 24),
                lastTimestamp: raw.littleEndian(at: 32),
                pairs: pairs
            )
        }
    }

    /// Loads both index files of a segment; nil when either is missing, damaged, or does not
    /// describe a segment of `segmentLength` bytes starting at `baseSeq`.
    static func load(
        fileSystem: any LogFileSystem,
        directory: String,
        baseSeq: UInt64,
        segmentLength: Int64
    ) -> SegmentIndex? {
        func read(_ name: String) -> [UInt8]? {
            let path = joinPath(directory, name)
            guard fileSystem.fileExists(at: path), let file = try? fileSystem.openFile(at: path, mode: .readOnly) else { return nil }
            defer { try? file.close() }
            guard let size = try? file.size(), size < 1 << 30 else { return nil }
            return try? file.read(count: Int(size), at: 0)
        }
        guard let offsetBytes = read(SegmentName.offsetIndex(baseSeq)), let timeBytes = read(SegmentName.timeIndex(baseSeq)),
            let offsets = decode(offsetBytes, time: false), let times = decode(timeBytes, time: true),
            offsets.baseSeq == baseSeq, times.baseSeq == baseSeq,
            offsets.coveredLength == segmentLength, times.coveredLength == segmentLength,
            offsets.endSeq == times.endSeq, offsets.pairs.count == times.pairs.count
        else { return nil }
        var index = SegmentIndex(baseSeq: baseSeq)
        index.coveredLength = segmentLength
        index.endSeq = offsets.endSeq
        index.lastTimestamp = offsets.lastTimestamp
        var previous: SegmentIndex.Entry?
        for (offsetPair, timePair) in zip(offsets.pairs, times.pairs) {
            let entry = SegmentIndex.Entry(seq: UInt64(bitPattern: offsetPair.0), offset: offsetPair.1, timestamp: timePair.0)
            guard UInt64(bitPattern: timePair.1) == entry.seq, entry.offset >= 0, entry.offset < segmentLength,
                entry.seq >= baseSeq, entry.seq < index.endSeq
            else { return nil }
            if let previous, previous.seq >= entry.seq || previous.offset >= entry.offset || previous.timestamp > entry.timestamp {
                return nil
            }
            index.entries.append(entry)
            previous = entry
        }
        if segmentLength > 0 && index.entries.first?.offset != 0 { return nil }
        return index
    }
}

/// How the files in a data directory are named.
enum SegmentName {
    static let segmentSuffix = ".log"
    static let lockFile = "LOCK"
    static let recoveryPoint = "recovery-point"
    static let quarantineManifest = "quarantine.json"
    static let retainedStart = "retention.json"
    static let temporarySuffix = ".tmp"
    static let dictionarySuffix = ".dict"

    static func padded(_ seq: UInt64) -> String {
        let digits = String(seq)
        return String(repeating: "0", count: max(0, 20 - digits.count)) + digits
    }

    static func segment(_ baseSeq: UInt64) -> String { padded(baseSeq) + segmentSuffix }
    static func offsetIndex(_ baseSeq: UInt64) -> String { padded(baseSeq) + ".index" }
    static func timeIndex(_ baseSeq: UInt64) -> String { padded(baseSeq) + ".timeindex" }
    static func dictionary(_ baseSeq: UInt64) -> String { padded(baseSeq) + dictionarySuffix }
    static func quarantine(_ baseSeq: UInt64, offset: Int64) -> String { padded(baseSeq) + ".quarantine-\(offset)" }

    /// The base seq of a segment file name, nil for any other name.
    static func baseSeq(ofSegment name: String) -> UInt64? {
        guard name.hasSuffix(segmentSuffix), name.count == 20 + segmentSuffix.count else { return nil }
        return UInt64(name.dropLast(segmentSuffix.count))
    }
}

/// Writes a small file so that it is either wholly there or not at all: to a temporary name,
/// synchronized, then renamed over the target. The caller synchronizes the directory.
func replaceFileAtomically(_ bytes: [UInt8], named name: String, in directory: String, fileSystem: any LogFileSystem) throws {
    let temporary = joinPath(directory, name + SegmentName.temporarySuffix)
    let file = try fileSystem.openFile(at: temporary, mode: .createOrTruncate)
    do {
        try file.write(bytes, at: 0)
        try file.synchronize()
        try file.close()
    } catch {
        try? file.close()
        throw error
    }
    try fileSystem.rename(from: temporary, to: joinPath(directory, name))
}
