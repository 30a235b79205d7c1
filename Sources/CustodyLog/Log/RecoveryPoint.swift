/// A durable note that the log was valid up to a point: everything in segment `segmentBase`
/// before `offset` (and every earlier segment) had been written and synchronized when it was
/// saved. Opening the log checks every batch's checksum only after this point; before it, the
/// batch headers are walked to rebuild the in-memory index.
///
/// Saved (atomically, by rename) at every segment roll, on close, and after recovery.
struct RecoveryPoint: Sendable, Equatable {
    static let magic: UInt32 = 0x5043_5243  // "CRCP"
    static let version: UInt8 = 1
    static let size = 44

    var segmentBase: UInt64
    var offset: Int64
    var endSeq: UInt64
    var lastTimestamp: Int64

    func encode() -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(Self.size)
        bytes.appendLittleEndian(Self.magic)
        bytes.append(Self.version)
        bytes.append(contentsOf: [0, 0, 0])
        bytes.appendLittleEndian(segmentBase)
        bytes.appendLittleEndian(offset)
        bytes.appendLittleEndian(endSeq)
        bytes.appendLittleEndian(lastTimestamp)
        bytes.appendLittleEndian(CRC32C.checksum(bytes))
        return bytes
    }

    /// The recovery point saved in `directory`, if there is a valid one.
    static func load(from directory: String, fileSystem: any LogFileSystem) -> RecoveryPoint? {
        let path = joinPath(directory, SegmentName.recoveryPoint)
        guard fileSystem.fileExists(at: path), let file = try? fileSystem.openFile(at: path, mode: .readOnly) else { return nil }
        defer { try? file.close() }
        guard let bytes = try? file.read(count: RecoveryPoint.size + 1, at: 0) else { return nil }
        return RecoveryPoint.decode(bytes)
    }

    static func decode(_ bytes: [UInt8]) -> RecoveryPoint? {
        guard bytes.count == size else { return nil }
        return bytes.withUnsafeBytes { raw -> RecoveryPoint? in
            guard raw.littleEndian(at: 0, as: UInt32.self) == magic, raw[4] == version,
                CRC32C.update(0, UnsafeRawBufferPointer(rebasing: raw[0..<40])) == raw.littleEndian(at: 40, as: UInt32.self)
            else { return nil }
            return RecoveryPoint(
                segmentBase: raw.littleEndian(at: 8),
                offset: raw.littleEndian(at: 16),
                endSeq: raw.littleEndian(at: 24),
                lastTimestamp: raw.littleEndian(at: 32)
            )
        }
    }
}
