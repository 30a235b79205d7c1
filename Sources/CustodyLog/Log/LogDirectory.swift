#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A read-only, offline view of a data directory: what `custody log verify|inspect|dump` use.
///
/// It takes no lock and changes nothing, so it may look at the directory of a running server;
/// bytes being appended at that moment show up as a torn tail of the last segment.
public struct LogDirectory: Sendable {
    public let path: String
    let fileSystem: any LogFileSystem

    public init(path: String, fileSystem: any LogFileSystem = PosixFileSystem()) {
        self.path = path
        self.fileSystem = fileSystem
    }

    /// The base seqs of the segment files, in order.
    public func segmentBases() throws -> [UInt64] {
        guard fileSystem.fileExists(at: path) else {
            throw LogError(.invalidArgument, "there is no data directory at \(path)")
        }
        return try fileSystem.contentsOfDirectory(at: path).compactMap(SegmentName.baseSeq(ofSegment:)).sorted()
    }

    func quarantineRecords() -> [QuarantineRecord] {
        let manifest = joinPath(path, SegmentName.quarantineManifest)
        guard fileSystem.fileExists(at: manifest), let file = try? fileSystem.openFile(at: manifest, mode: .readOnly) else { return [] }
        defer { try? file.close() }
        guard let size = try? file.size(), let bytes = try? file.read(count: Int(size), at: 0) else { return [] }
        return (try? JSONDecoder().decode([QuarantineRecord].self, from: Data(bytes))) ?? []
    }

    func checkIndexFiles(base: UInt64, length: Int64, endSeq: UInt64, batchStarts: [Int64: (seq: UInt64, timestamp: Int64)]) -> [LogDamage] {
        var damage: [LogDamage] = []
        for time in [false, true] {
            let name = time ? SegmentName.timeIndex(base) : SegmentName.offsetIndex(base)
            let filePath = joinPath(path, name)
            guard fileSystem.fileExists(at: filePath) else { continue }
            func report(_ defect: String) {
                damage.append(LogDamage(segment: name, offset: 0, length: 0, firstSeq: nil, lastSeq: nil, defect: defect))
            }
            guard let file = try? fileSystem.openFile(at: filePath, mode: .readOnly), let size = try? file.size(),
                let bytes = try? file.read(count: Int(size), at: 0)
            else {
                report("index file cannot be read")
                continue
            }
            try? file.close()
            guard let decoded = SegmentIndexFile.decode(bytes, time: time) else {
                report("index file is damaged (bad magic, length or CRC-32C); opening the log rebuilds it")
                continue
            }
            if decoded.coveredLength != length || decoded.endSeq != endSeq || decoded.baseSeq != base {
                report(
                    "index file is stale: it describes \(decoded.coveredLength) bytes up to seq \(decoded.endSeq), the segment has \(length) bytes up to seq \(endSeq)"
                )
                continue
            }
            for pair in decoded.pairs {
                let matches: Bool
                if time {
                    matches = batchStarts.values.contains { $0.seq == UInt64(bitPattern: pair.1) && $0.timestamp == pair.0 }
                } else {
                    matches = batchStarts[pair.1]?.seq == UInt64(bitPattern: pair.0)
                }
                if !matches {
                    report("index entry (\(pair.0), \(pair.1)) does not point at the start of a batch")
                    break
                }
            }
        }
        return damage
    }

    // MARK: Inspect

    /// What ``inspect()`` tells about one segment.
    public struct SegmentSummary: Sendable, Codable, Hashable {
        public var name: String
        public var baseSeq: UInt64
        public var endSeq: UInt64
        public var bytes: Int64
        public var batches: Int
        public var records: UInt64
        /// The records' framed bytes before compression.
        public var uncompressedBytes: Int64
        public var firstTimestamp: Int64?
        public var lastTimestamp: Int64?
        public var hasIndexFiles: Bool
        /// Bytes at the end that are not whole batches (a torn tail, or an append in progress).
        public var trailingBytes: Int64
    }

    public struct Inspection: Sendable, Codable, Hashable {
        public var segments: [SegmentSummary]
        public var quarantined: [QuarantineRecord]
        /// Where retention left the log's start (nil: it never deleted anything).
        public var retention: RetainedStart?
        public var bytes: Int64 { segments.reduce(0) { $0 + $1.bytes } }
        public var uncompressedBytes: Int64 { segments.reduce(0) { $0 + $1.uncompressedBytes } }
        public var records: UInt64 { segments.reduce(0) { $0 + $1.records } }
        /// Uncompressed record bytes per byte on disk.
        public var compressionRatio: Double { bytes > 0 ? Double(uncompressedBytes) / Double(bytes) : 0 }
    }

    /// Segments, seq ranges, sizes, compression and time range, from the batch headers.
    public func inspect() throws -> Inspection {
        var segments: [SegmentSummary] = []
        for base in try segmentBases() {
            let name = SegmentName.segment(base)
            let file = try fileSystem.openFile(at: joinPath(path, name), mode: .readOnly)
            defer { try? file.close() }
            let length = try file.size()
            var scanner = SegmentScanner(file: file, length: length, readAhead: 256 << 10)
            var summary = SegmentSummary(
                name: name,
                baseSeq: base,
                endSeq: base,
                bytes: length,
                batches: 0,
                records: 0,
                uncompressedBytes: 0,
                hasIndexFiles: fileSystem.fileExists(at: joinPath(path, SegmentName.offsetIndex(base))),
                trailingBytes: 0
            )
            var offset: Int64 = 0
            walking: while true {
                switch try scanner.batch(at: offset, check: .header) {
                case .end:
                    break walking
                case .damaged(let at, _):
                    summary.trailingBytes = length - at
                    break walking
                case .batch(let header, let at):
                    summary.batches += 1
                    summary.records += UInt64(header.recordCount)
                    summary.uncompressedBytes += Int64(header.uncompressedLength)
                    if summary.firstTimestamp == nil { summary.firstTimestamp = header.firstTimestamp }
                    summary.lastTimestamp = header.lastTimestamp
                    summary.endSeq = header.endSeq
                    offset = at + Int64(header.totalLength)
                }
            }
            segments.append(summary)
        }
        return Inspection(segments: segments, quarantined: quarantineRecords(), retention: retainedStart())
    }

    // MARK: Dump

    /// Calls `body` with every record whose seq is in `seqs`, in order, checking every batch's
    /// CRC-32C; `body` returns false to stop. Uses the segment file names to skip whole segments.
    public func forEachRecord(in seqs: ClosedRange<UInt64>, _ body: (LogRecord) throws -> Bool) throws {
        let bases = try segmentBases()
        let dictionaries = SegmentDictionaries(fileSystem: fileSystem)
        for (position, base) in bases.enumerated() {
            if position + 1 < bases.count && bases[position + 1] <= seqs.lowerBound { continue }
            if base > seqs.upperBound { return }
            let name = SegmentName.segment(base)
            let file = try fileSystem.openFile(at: joinPath(path, name), mode: .readOnly)
            defer { try? file.close() }
            let length = try file.size()
            var start: Int64 = 0
            if let index = SegmentIndexFile.load(fileSystem: fileSystem, directory: path, baseSeq: base, segmentLength: length) {
                start = index.offset(forSeq: seqs.lowerBound)
            }
            var scanner = SegmentScanner(file: file, length: length, path: joinPath(path, name), dictionaries: dictionaries)
            var offset = start
            reading: while true {
                switch try scanner.batch(at: offset, check: .checksum) {
                case .end:
                    break reading
                case .damaged(let at, let defect):
                    if position == bases.count - 1 { break reading }  // a torn tail, or an append in progress
                    throw LogError(
                        .corruption,
                        "\(name) is damaged at byte \(at): \(defect); run custody log verify",
                        damage: [LogDamage(segment: name, offset: at, length: length - at, firstSeq: nil, lastSeq: nil, defect: defect.description)]
                    )
                case .batch(let header, let at):
                    offset = at + Int64(header.totalLength)
                    guard header.lastSeq >= seqs.lowerBound else { continue }
                    guard header.firstSeq <= seqs.upperBound else { return }
                    switch try scanner.records(of: header, at: at) {
                    case .failure(let defect):
                        throw LogError(.corruption, "\(name) is damaged at byte \(at): \(defect); run custody log verify")
                    case .success(let records):
                        for record in records where seqs.contains(record.seq) {
                            if try !body(record) { return }
                        }
                    }
                }
            }
        }
    }
}
