import CLZ4

/// A segment's LZ4 dictionary (docs/log-format.md, "Segment dictionaries"): up to 64 KiB of the
/// log's recent uncompressed payload, against which the segment's small batches are compressed
/// (codec 2), so that a batch of a few events finds the sources, operations, stages and detail
/// keys it repeats without the batch having to hold them itself.
///
/// Immutable once made. Compression starts every batch from a copy of one prepared LZ4 stream
/// (the dictionary hashed once, by `LZ4_loadDict`); every batch is still one LZ4 block that
/// decompresses on its own with the dictionary (`LZ4_decompress_safe_usingDict`), so random reads
/// of a batch stay one decompression.
public final class LZ4Dictionary: @unchecked Sendable {
    // Sendable: `bytes` and `prepared` are written only in `init` and freed only in `deinit`;
    // every other use reads them (compression copies `prepared` into a stream of its own before
    // liblz4 writes to it), so instances can be shared between threads.

    /// The largest dictionary LZ4 uses (it looks back at most 64 KiB).
    public static let maximumBytes = 64 << 10

    private let bytes: UnsafeMutableRawBufferPointer
    private let prepared: UnsafeMutablePointer<LZ4_stream_t>

    /// A dictionary of `content`'s last ``maximumBytes`` bytes; nil when `content` is empty.
    public init?(_ content: UnsafeRawBufferPointer) {
        guard !content.isEmpty else { return nil }
        let kept = UnsafeRawBufferPointer(rebasing: content[max(0, content.count - Self.maximumBytes)...])
        bytes = .allocate(byteCount: kept.count, alignment: 16)
        bytes.copyMemory(from: kept)
        guard let stream = LZ4_createStream() else {
            bytes.deallocate()
            return nil
        }
        prepared = stream
        LZ4_loadDict(prepared, bytes.baseAddress!.assumingMemoryBound(to: CChar.self), Int32(bytes.count))
    }

    /// A dictionary of `content`'s last ``maximumBytes`` bytes; nil when `content` is empty.
    public static func of(_ content: [UInt8]) -> LZ4Dictionary? {
        content.withUnsafeBytes { LZ4Dictionary($0) }
    }

    deinit {
        LZ4_freeStream(prepared)
        bytes.deallocate()
    }

    public var count: Int { bytes.count }

    /// Runs `body` with the dictionary's bytes (which never change).
    func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(bytes))
    }

    /// Compresses `source` against the dictionary into `destination`; returns the compressed
    /// length, or nil when it does not fit (then the caller compresses without the dictionary or
    /// stores the bytes as they are).
    func compress(_ source: UnsafeRawBufferPointer, into destination: UnsafeMutableRawBufferPointer) -> Int? {
        guard let sourceBase = source.baseAddress, let destinationBase = destination.baseAddress, source.count > 0 else { return nil }
        let stream = UnsafeMutablePointer<LZ4_stream_t>.allocate(capacity: 1)
        defer { stream.deallocate() }
        // A copy of the prepared stream is the dictionary loaded, without hashing it again.
        stream.update(from: prepared, count: 1)
        let written = LZ4_compress_fast_continue(
            stream,
            sourceBase.assumingMemoryBound(to: CChar.self),
            destinationBase.assumingMemoryBound(to: CChar.self),
            Int32(source.count),
            Int32(destination.count),
            1
        )
        return written > 0 ? Int(written) : nil
    }

    /// Decompresses exactly `destination.count` bytes of a block compressed against this
    /// dictionary; false when `source` is not such a block (liblz4's safe decoder never reads or
    /// writes out of bounds).
    func decompress(_ source: UnsafeRawBufferPointer, into destination: UnsafeMutableRawBufferPointer) -> Bool {
        guard let sourceBase = source.baseAddress, let destinationBase = destination.baseAddress else {
            return destination.isEmpty && source.isEmpty
        }
        let produced = LZ4_decompress_safe_usingDict(
            sourceBase.assumingMemoryBound(to: CChar.self),
            destinationBase.assumingMemoryBound(to: CChar.self),
            Int32(source.count),
            Int32(destination.count),
            bytes.baseAddress!.assumingMemoryBound(to: CChar.self),
            Int32(bytes.count)
        )
        return produced == destination.count
    }
}

extension LZ4Dictionary {
    /// The dictionary file's header: magic `CDCT`, version 1, three zero bytes, the dictionary's
    /// length (u32) and the CRC-32C of the first 12 header bytes followed by the dictionary.
    static let fileHeaderSize = 16
    static let fileMagic: [UInt8] = [0x43, 0x44, 0x43, 0x54]  // "CDCT"

    /// The bytes of a dictionary file (docs/log-format.md, "Segment dictionaries").
    public func fileBytes() -> [UInt8] {
        var file = Self.fileMagic
        file += [1, 0, 0, 0]
        file.appendLittleEndian(UInt32(bytes.count))
        let crc = CRC32C.update(file.withUnsafeBytes { CRC32C.update(0, $0) }, UnsafeRawBufferPointer(bytes))
        file.appendLittleEndian(crc)
        file.append(contentsOf: UnsafeRawBufferPointer(bytes))
        return file
    }

    /// The dictionary a dictionary file holds; nil when the bytes are not a valid one (wrong
    /// magic or version, a length that does not match, or a CRC that does not).
    public static func parse(file: [UInt8]) -> LZ4Dictionary? {
        file.withUnsafeBytes { raw -> LZ4Dictionary? in
            guard raw.count > fileHeaderSize, Array(raw[0..<4]) == fileMagic, raw[4] == 1, raw[5] == 0, raw[6] == 0, raw[7] == 0 else {
                return nil
            }
            let length = Int(raw.littleEndian(at: 8, as: UInt32.self))
            guard length >= 1, length <= maximumBytes, raw.count == fileHeaderSize + length else { return nil }
            let content = UnsafeRawBufferPointer(rebasing: raw[fileHeaderSize...])
            let crc = CRC32C.update(CRC32C.update(0, UnsafeRawBufferPointer(rebasing: raw[0..<12])), content)
            guard crc == raw.littleEndian(at: 12, as: UInt32.self) else { return nil }
            return LZ4Dictionary(content)
        }
    }
}

/// A segment dictionary prepared for LZ4's high-compression mode (LZ4HC): what the writer uses
/// while the log is quiet (docs/log-format.md, "Segment dictionaries"), where the CPU it costs
/// is small and the space it saves on small batches is not. Its output is an ordinary codec 2
/// block: it decompresses exactly as ``LZ4Dictionary/decompress(_:into:)`` does.
///
/// The writer's alone (a prepared LZ4HC state is 256 KiB, too much to keep for every segment a
/// reader has open).
final class LZ4HighCompressionDictionary: @unchecked Sendable {
    // Sendable: `prepared` is written only in `init` and freed only in `deinit`; compression
    // copies it into a state of its own before liblz4 writes to that copy. The dictionary's
    // bytes it points into belong to `dictionary`, which it keeps alive and which never changes.

    /// The level: LZ4HC's ratio on small batches is within 1% of level 9's, at less CPU.
    static let level: Int32 = 4

    let dictionary: LZ4Dictionary
    private let prepared: UnsafeMutablePointer<LZ4_streamHC_t>

    init?(_ dictionary: LZ4Dictionary) {
        guard let stream = LZ4_createStreamHC() else { return nil }
        self.dictionary = dictionary
        prepared = stream
        LZ4_resetStreamHC_fast(prepared, Self.level)
        dictionary.withBytes { bytes in
            _ = LZ4_loadDictHC(prepared, bytes.baseAddress!.assumingMemoryBound(to: CChar.self), Int32(bytes.count))
        }
    }

    deinit {
        LZ4_freeStreamHC(prepared)
    }

    /// Compresses `source` against the dictionary into `destination`; returns the compressed
    /// length, or nil when it does not fit.
    func compress(_ source: UnsafeRawBufferPointer, into destination: UnsafeMutableRawBufferPointer) -> Int? {
        guard let sourceBase = source.baseAddress, let destinationBase = destination.baseAddress, source.count > 0 else { return nil }
        let stream = UnsafeMutablePointer<LZ4_streamHC_t>.allocate(capacity: 1)
        defer { stream.deallocate() }
        // A copy of the prepared state is the dictionary loaded, without indexing it again.
        stream.update(from: prepared, count: 1)
        let written = LZ4_compress_HC_continue(
            stream,
            sourceBase.assumingMemoryBound(to: CChar.self),
            destinationBase.assumingMemoryBound(to: CChar.self),
            Int32(source.count),
            Int32(destination.count)
        )
        return written > 0 ? Int(written) : nil
    }
}
