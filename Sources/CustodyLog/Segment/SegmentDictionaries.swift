import Synchronization

/// The dictionaries of a data directory's segments (docs/log-format.md, "Segment dictionaries"):
/// each read from its segment's `.dict` file the first time a codec 2 batch of the segment is
/// decoded, then kept, so that a scattered read of many batches reads the file once.
///
/// Rules:
/// - A dictionary file is written whole (to a temporary name, synchronized, renamed, the
///   directory synchronized) **before** the first batch that uses it is written, and never
///   changes after: a codec 2 batch that is on disk always has its dictionary on disk.
/// - Only valid dictionaries are kept; a missing or damaged file is looked at again on the next
///   lookup (it is the batch that is then reported damaged).
/// - The lock guards only the table, never a read of a file.
final class SegmentDictionaries: Sendable {
    let fileSystem: any LogFileSystem
    private let loaded = Mutex<[String: LZ4Dictionary]>([:])
    /// More segments' dictionaries than this are not all kept: the table is emptied and filled
    /// again as batches need them (each is 64 KiB).
    static let keptLimit = 512

    init(fileSystem: any LogFileSystem) {
        self.fileSystem = fileSystem
    }

    /// The dictionary file's path for the segment file at `segmentPath`.
    static func path(forSegmentAt segmentPath: String) -> String {
        let stem = segmentPath.hasSuffix(SegmentName.segmentSuffix) ? String(segmentPath.dropLast(SegmentName.segmentSuffix.count)) : segmentPath
        return stem + SegmentName.dictionarySuffix
    }

    /// What a segment's dictionary file holds.
    enum Stored: Sendable {
        case absent
        case damaged
        case valid(LZ4Dictionary)
    }

    /// Reads the dictionary file of the segment at `segmentPath`.
    static func load(forSegmentAt segmentPath: String, fileSystem: any LogFileSystem) -> Stored {
        let path = Self.path(forSegmentAt: segmentPath)
        guard fileSystem.fileExists(at: path) else { return .absent }
        guard let file = try? fileSystem.openFile(at: path, mode: .readOnly) else { return .damaged }
        defer { try? file.close() }
        guard let size = try? file.size(), size <= Int64(LZ4Dictionary.fileHeaderSize + LZ4Dictionary.maximumBytes),
            let bytes = try? file.read(count: Int(size), at: 0), let dictionary = LZ4Dictionary.parse(file: bytes)
        else { return .damaged }
        return .valid(dictionary)
    }

    /// Writes `dictionary` as the dictionary file of segment `base` in `directory`, durably (the
    /// file and the directory synchronized) before it returns.
    static func write(_ dictionary: LZ4Dictionary, segment base: UInt64, directory: String, fileSystem: any LogFileSystem) throws {
        try replaceFileAtomically(dictionary.fileBytes(), named: SegmentName.dictionary(base), in: directory, fileSystem: fileSystem)
        try fileSystem.synchronizeDirectory(at: directory)
    }

    /// The dictionary of the segment at `segmentPath`, nil when it has no valid one.
    func dictionary(forSegmentAt segmentPath: String) -> LZ4Dictionary? {
        if let kept = loaded.withLock({ $0[segmentPath] }) { return kept }
        guard case .valid(let dictionary) = Self.load(forSegmentAt: segmentPath, fileSystem: fileSystem) else { return nil }
        remember(dictionary, forSegmentAt: segmentPath)
        return dictionary
    }

    /// Keeps a dictionary the writer has just made durable.
    func remember(_ dictionary: LZ4Dictionary, forSegmentAt segmentPath: String) {
        loaded.withLock { table in
            if table.count >= Self.keptLimit { table.removeAll() }
            table[segmentPath] = dictionary
        }
    }

    /// Forgets the dictionary of a segment that was deleted or is being started again.
    func forget(segmentAt segmentPath: String) {
        _ = loaded.withLock { $0.removeValue(forKey: segmentPath) }
    }
}
