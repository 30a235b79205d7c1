#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Where a log starts after retention deleted its oldest segments (docs/log-format.md,
/// "Retention"): `retention.json` in the data directory.
///
/// Rules:
/// - It is written, synchronized and renamed into place **before** any segment is deleted, so a
///   log whose first segment starts after seq 1 always has the chain value that segment's first
///   batch hashes from — also when the process died between deleting two segments.
/// - ``chainBefore`` holds the chain value after `seq − 1` for every seq the log may start at
///   while a deletion is under way: the base of each segment being deleted after the first, and
///   ``firstSeq``.
public struct RetainedStart: Sendable, Hashable, Codable {
    /// The first seq retention keeps: segments wholly before it are deleted (or being deleted).
    public var firstSeq: UInt64
    /// The chain value after `seq − 1` (hex) by `seq` (decimal text: JSON object keys).
    public var chainBefore: [String: String]

    public init(firstSeq: UInt64, chainBefore: [UInt64: ChainValue]) {
        self.firstSeq = firstSeq
        self.chainBefore = Dictionary(uniqueKeysWithValues: chainBefore.map { (String($0.key), $0.value.hex) })
    }

    enum CodingKeys: String, CodingKey {
        case firstSeq = "first_seq"
        case chainBefore = "chain_before"
    }

    /// The chain value after `seq − 1`, when recorded.
    public func chainValue(before seq: UInt64) -> ChainValue? {
        chainBefore[String(seq)].flatMap(ChainValue.init(hex:))
    }

    /// Every recorded start, by seq.
    var starts: [UInt64: ChainValue] {
        var starts: [UInt64: ChainValue] = [:]
        for (seq, hex) in chainBefore {
            if let seq = UInt64(seq), let value = ChainValue(hex: hex) { starts[seq] = value }
        }
        return starts
    }
}

extension LogDirectory {
    /// `retention.json`, nil when retention never deleted anything here (or the file is unreadable).
    public func retainedStart() -> RetainedStart? {
        RetainedStart.read(in: path, fileSystem: fileSystem)
    }
}

extension RetainedStart {
    static func read(in directory: String, fileSystem: any LogFileSystem) -> RetainedStart? {
        let path = joinPath(directory, SegmentName.retainedStart)
        guard fileSystem.fileExists(at: path), let file = try? fileSystem.openFile(at: path, mode: .readOnly) else { return nil }
        defer { try? file.close() }
        guard let size = try? file.size(), let bytes = try? file.read(count: Int(size), at: 0) else { return nil }
        return try? JSONDecoder().decode(RetainedStart.self, from: Data(bytes))
    }

    /// Writes the file under a temporary name, synchronizes it, renames it into place and
    /// synchronizes the directory.
    func write(in directory: String, fileSystem: any LogFileSystem) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try replaceFileAtomically(Array(try encoder.encode(self)), named: SegmentName.retainedStart, in: directory, fileSystem: fileSystem)
        try fileSystem.synchronizeDirectory(at: directory)
    }
}

/// What ``SegmentLog/deleteRecords(before:)`` deleted.
public struct LogDeletion: Sendable, Hashable, Codable {
    /// The seqs deleted (none when `firstSeq > lastSeq`).
    public var firstSeq: UInt64
    public var lastSeq: UInt64
    public var segments: Int
    public var bytes: Int64

    public init(firstSeq: UInt64, lastSeq: UInt64, segments: Int, bytes: Int64) {
        self.firstSeq = firstSeq
        self.lastSeq = lastSeq
        self.segments = segments
        self.bytes = bytes
    }
}

/// How large a log is and what retention may delete of it (``EventLog/retentionExtent()``).
public struct RetentionExtent: Sendable, Hashable {
    /// Every byte the log keeps.
    public var bytes: Int64
    /// The runs retention may delete, oldest first and contiguous from the log's first seq.
    public var deletable: [DeletableRange]

    public init(bytes: Int64, deletable: [DeletableRange]) {
        self.bytes = bytes
        self.deletable = deletable
    }
}

/// One run of records that retention deletes whole: seqs `firstSeq..<endSeq`, removed by
/// ``EventLog/deleteRecords(before:)`` with `endSeq`.
public struct DeletableRange: Sendable, Hashable {
    /// What it is, for people: a segment's file name, a stream's message numbers.
    public var name: String
    public var firstSeq: UInt64
    public var endSeq: UInt64
    public var bytes: Int64
    /// The timestamp of its last record (nil when unknown).
    public var lastTimestamp: Int64?

    public init(name: String, firstSeq: UInt64, endSeq: UInt64, bytes: Int64, lastTimestamp: Int64?) {
        self.name = name
        self.firstSeq = firstSeq
        self.endSeq = endSeq
        self.bytes = bytes
        self.lastTimestamp = lastTimestamp
    }
}
