import CLZ4

/// LZ4 block compression (liblz4), used for batch payloads when it makes them smaller.
enum LZ4Block {
    /// The largest output `compress` can produce for `count` input bytes.
    static func compressBound(_ count: Int) -> Int {
        Int(LZ4_compressBound(Int32(count)))
    }

    /// Compresses `source` into `destination`; returns the compressed length, or nil when the
    /// result would not fit in `destination` (then the caller stores the bytes as they are).
    static func compress(_ source: UnsafeRawBufferPointer, into destination: UnsafeMutableRawBufferPointer) -> Int? {
        guard let sourceBase = source.baseAddress, let destinationBase = destination.baseAddress, source.count > 0 else { return nil }
        let written = LZ4_compress_default(
            sourceBase.assumingMemoryBound(to: CChar.self),
            destinationBase.assumingMemoryBound(to: CChar.self),
            Int32(source.count),
            Int32(destination.count)
        )
        return written > 0 ? Int(written) : nil
    }

    /// Decompresses exactly `destination.count` bytes; returns false when `source` is not a valid
    /// LZ4 block of that size (liblz4's safe decoder never reads or writes out of bounds).
    static func decompress(_ source: UnsafeRawBufferPointer, into destination: UnsafeMutableRawBufferPointer) -> Bool {
        guard let sourceBase = source.baseAddress, let destinationBase = destination.baseAddress else {
            return destination.isEmpty && source.isEmpty
        }
        let produced = LZ4_decompress_safe(
            sourceBase.assumingMemoryBound(to: CChar.self),
            destinationBase.assumingMemoryBound(to: CChar.self),
            Int32(source.count),
            Int32(destination.count)
        )
        return produced == destination.count
    }
}
