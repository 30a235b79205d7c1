import CustodyLog
import Foundation
import NIOCore

/// Rewrites a closed segment log's files the way someone who can write the data directory
/// could: batches re-encoded with valid CRCs, renumbered, swapped, removed, whole segments
/// removed or renamed, and the hash chain recomputed so that it is consistent again. What the
/// tampering tests of `custody log verify` use; index files of a rewritten segment and the
/// recovery point are removed (a careful forger leaves nothing stale behind).
public struct LogSurgery {
    public let directory: String

    public init(directory: String) {
        self.directory = directory
    }

    /// One segment file and its batches.
    public struct Segment {
        public var name: String
        public var baseSeq: UInt64
        public var batches: [SegmentBatch]
    }

    /// Every segment, in order, with its batches.
    public func segments() throws -> [Segment] {
        let names = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".log") }.sorted()
        return try names.map { name in
            let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: directory + "/" + name)))
            // Codec 2 batches decode with the segment's dictionary; rewritten, they are codec 1.
            let dictionary = (try? Data(contentsOf: URL(fileURLWithPath: directory + "/" + name.dropLast(4) + ".dict")))
                .flatMap { LZ4Dictionary.parse(file: [UInt8]($0)) }
            return Segment(name: name, baseSeq: UInt64(name.dropLast(4))!, batches: SegmentBatch.parse(segment: bytes, dictionary: dictionary))
        }
    }

    /// The file name of the segment whose first seq is `base`.
    public static func segmentName(_ base: UInt64) -> String {
        let digits = String(base)
        return String(repeating: "0", count: 20 - digits.count) + digits + ".log"
    }

    /// Writes `segment` (under its name, which may be new), with its batches' offsets as they
    /// end up, and removes its index files and the recovery point.
    @discardableResult
    public func write(_ segment: Segment) throws -> Segment {
        var segment = segment
        var bytes: [UInt8] = []
        for index in segment.batches.indices {
            segment.batches[index].offset = bytes.count
            bytes += segment.batches[index].encoded()
        }
        try Data(bytes).write(to: URL(fileURLWithPath: directory + "/" + segment.name))
        removeIndexFiles(of: segment.name)
        try? FileManager.default.removeItem(atPath: directory + "/recovery-point")
        return segment
    }

    /// Removes a segment file and its index files.
    public func remove(segmentNamed name: String) throws {
        try FileManager.default.removeItem(atPath: directory + "/" + name)
        removeIndexFiles(of: name)
    }

    func removeIndexFiles(of name: String) {
        let stem = directory + "/" + name.dropLast(4)
        try? FileManager.default.removeItem(atPath: stem + ".index")
        try? FileManager.default.removeItem(atPath: stem + ".timeindex")
    }

    /// Renumbers every batch from the first segment's base on so that seqs run on without a gap,
    /// renaming segment files to their new first seqs.
    public func renumber() throws {
        var next: UInt64?
        for var segment in try segments() {
            let oldName = segment.name
            var seq = next ?? segment.baseSeq
            segment.baseSeq = seq
            segment.name = Self.segmentName(seq)
            for index in segment.batches.indices {
                segment.batches[index].header.firstSeq = seq
                seq += UInt64(segment.batches[index].header.recordCount)
            }
            if oldName != segment.name { try remove(segmentNamed: oldName) }
            try write(segment)
            next = seq
        }
    }

    /// Recomputes the chain value every chained batch stores, from ``ChainValue/zero`` over every
    /// record in seq order: the log's chain is consistent again whatever was changed.
    public func rechain() throws {
        var chain = ChainValue.zero
        for var segment in try segments() {
            for index in segment.batches.indices {
                var seq = segment.batches[index].header.firstSeq
                for record in segment.batches[index].records {
                    chain = chain.next(seq: seq, bytes: record.payload)
                    seq += 1
                }
                if segment.batches[index].chain != nil { segment.batches[index].chain = chain }
            }
            try write(segment)
        }
    }
}
