/// The fixed 48-byte header in front of every batch in a segment file.
///
/// Layout (little-endian), documented byte by byte in docs/log-format.md:
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 4 | magic `CBAT` |
/// | 4 | 1 | format version (1) |
/// | 5 | 1 | codec: 0 stored, 1 LZ4 block, 2 LZ4 block against the segment's dictionary |
/// | 6 | 2 | flags: bit 0 = last batch of its write, bit 1 = acknowledged before fsync |
/// | 8 | 8 | first seq |
/// | 16 | 4 | record count (≥ 1) |
/// | 20 | 4 | uncompressed payload length |
/// | 24 | 8 | first record timestamp (ns since the Unix epoch) |
/// | 32 | 8 | last record timestamp |
/// | 40 | 4 | stored payload length (the bytes that follow the header) |
/// | 44 | 4 | CRC-32C over bytes 0..<44, the stored payload and (version 2) the chain value |
///
/// Version 2 batches are followed by a 32-byte trailer after the stored payload: the hash chain's
/// value after the batch's last record (``ChainValue``). Version 1 batches (written before the
/// chain) have none; a reader reads both.
public struct BatchHeader: Sendable, Hashable {
    public static let size = 48
    public static let magic: UInt32 = 0x5441_4243  // "CBAT" read as a little-endian UInt32
    public static let currentVersion: UInt8 = 2
    /// The first version whose batches carry the chain value.
    public static let chainedVersion: UInt8 = 2
    /// The largest payload a batch may have, stored or uncompressed: bounds the memory a corrupt
    /// length field could make a reader allocate.
    public static let maximumPayloadLength = 64 << 20

    public enum Codec: UInt8, Sendable {
        case stored = 0
        case lz4 = 1
        /// An LZ4 block compressed against the segment's dictionary (``LZ4Dictionary``), which
        /// is in the segment's `.dict` file: docs/log-format.md, "Segment dictionaries".
        case lz4Dictionary = 2
    }

    /// Bit 0 of the flags: the last batch of one group-commit write. Recovery uses it to tell a
    /// torn final write (which may have reached the disk in any order) from damage to data
    /// that had been synchronized: a complete later write proves the earlier one was synced.
    public static let flagEndOfWrite: UInt16 = 1
    /// Bit 1 of the flags: written under a policy that acknowledges before fsync (`interval`,
    /// `never`), so several writes may have been in the page cache together at a crash.
    public static let flagDeferredSync: UInt16 = 2
    static let knownFlags: UInt16 = 3

    public var version: UInt8
    public var codec: Codec
    public var flags: UInt16 = 0
    public var firstSeq: UInt64
    public var recordCount: UInt32
    public var uncompressedLength: UInt32
    public var firstTimestamp: Int64
    public var lastTimestamp: Int64
    public var storedLength: UInt32
    public var checksum: UInt32

    /// The seq after the batch's last record.
    public var endSeq: UInt64 { firstSeq + UInt64(recordCount) }
    public var lastSeq: UInt64 { endSeq - 1 }
    /// Whether the batch ends with the chain value after its last record.
    public var isChained: Bool { version >= Self.chainedVersion }
    /// The bytes after the stored payload: the chain value, in a chained batch.
    public var trailerLength: Int { isChained ? ChainValue.byteCount : 0 }
    /// Header, payload and trailer.
    public var totalLength: Int { Self.size + Int(storedLength) + trailerLength }

    /// Why bytes that were meant to be a batch header are not one.
    public enum Defect: Error, Sendable, Hashable, CustomStringConvertible {
        case truncated
        case badMagic
        case unsupportedVersion(UInt8)
        case unknownCodec(UInt8)
        case badLengths
        case badTimestamps
        case checksumMismatch
        case badPayload
        /// A codec 2 batch whose segment has no valid dictionary file.
        case missingDictionary
        case unexpectedSeq(expected: UInt64, found: UInt64)

        public var description: String {
            switch self {
            case .truncated: "truncated batch"
            case .badMagic: "no batch magic"
            case .unsupportedVersion(let v): "unsupported batch format version \(v)"
            case .unknownCodec(let c): "unknown codec \(c)"
            case .badLengths: "impossible lengths in batch header"
            case .badTimestamps: "timestamps out of order in batch header"
            case .checksumMismatch: "CRC-32C mismatch"
            case .badPayload: "payload does not decode to the records the header announces"
            case .missingDictionary: "the batch is compressed against the segment's dictionary, and the segment's .dict file is missing or damaged"
            case .unexpectedSeq(let expected, let found): "batch starts at seq \(found) where seq \(expected) was expected"
            }
        }
    }

    /// Parses and sanity-checks a header (not the checksum, which needs the payload).
    public static func parse(_ bytes: UnsafeRawBufferPointer) -> Result<BatchHeader, Defect> {
        guard bytes.count >= size else { return .failure(.truncated) }
        guard bytes.littleEndian(at: 0, as: UInt32.self) == magic else { return .failure(.badMagic) }
        let version = bytes[4]
        guard version >= 1 && version <= currentVersion else { return .failure(.unsupportedVersion(version)) }
        guard let codec = Codec(rawValue: bytes[5]) else { return .failure(.unknownCodec(bytes[5])) }
        let header = BatchHeader(
            version: version,
            codec: codec,
            flags: bytes.littleEndian(at: 6),
            firstSeq: bytes.littleEndian(at: 8),
            recordCount: bytes.littleEndian(at: 16),
            uncompressedLength: bytes.littleEndian(at: 20),
            firstTimestamp: bytes.littleEndian(at: 24),
            lastTimestamp: bytes.littleEndian(at: 32),
            storedLength: bytes.littleEndian(at: 40),
            checksum: bytes.littleEndian(at: 44)
        )
        let minimumPayload = Int(header.recordCount) * RecordFrame.headerSize
        guard header.flags & ~knownFlags == 0,
            header.firstSeq > 0,
            header.recordCount > 0,
            header.firstSeq <= UInt64.max - UInt64(header.recordCount),
            Int(header.uncompressedLength) >= minimumPayload,
            Int(header.uncompressedLength) <= maximumPayloadLength,
            Int(header.storedLength) <= maximumPayloadLength,
            header.codec != .stored || header.storedLength == header.uncompressedLength
        else { return .failure(.badLengths) }
        guard header.firstTimestamp <= header.lastTimestamp else { return .failure(.badTimestamps) }
        return .success(header)
    }

    /// Writes the header, computing the checksum over it and `payload` (the stored payload and,
    /// in a chained batch, the chain value after it).
    @discardableResult
    func write(into destination: UnsafeMutableRawBufferPointer, payload: UnsafeRawBufferPointer) -> UInt32 {
        destination.storeLittleEndian(Self.magic, at: 0)
        destination[4] = version
        destination[5] = codec.rawValue
        destination.storeLittleEndian(flags, at: 6)
        destination.storeLittleEndian(firstSeq, at: 8)
        destination.storeLittleEndian(recordCount, at: 16)
        destination.storeLittleEndian(uncompressedLength, at: 20)
        destination.storeLittleEndian(firstTimestamp, at: 24)
        destination.storeLittleEndian(lastTimestamp, at: 32)
        destination.storeLittleEndian(storedLength, at: 40)
        let crc = CRC32C.update(CRC32C.update(0, UnsafeRawBufferPointer(rebasing: destination[0..<44])), payload)
        destination.storeLittleEndian(crc, at: 44)
        return crc
    }

    /// Whether `checksum` matches the header bytes and what follows them (the stored payload and
    /// any trailer).
    static func checksumMatches(header: UnsafeRawBufferPointer, payload: UnsafeRawBufferPointer) -> Bool {
        let crc = CRC32C.update(CRC32C.update(0, UnsafeRawBufferPointer(rebasing: header[0..<44])), payload)
        return crc == header.littleEndian(at: 44, as: UInt32.self)
    }
}

/// One record inside a batch's (uncompressed) payload: a 4-byte length, an 8-byte timestamp in
/// nanoseconds since the Unix epoch, then the record's bytes. Records follow each other with no
/// padding; their seqs are the batch's first seq plus their position.
enum RecordFrame {
    static let headerSize = 12
    /// The largest single record: a batch must be able to hold it.
    static let maximumPayloadLength = 16 << 20
}
