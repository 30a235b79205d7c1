import CCRC32C

/// CRC-32C (Castagnoli), the checksum of every batch, index file and recovery point.
///
/// Computed with the CPU's CRC instructions (SSE4.2, ARMv8) when present.
public enum CRC32C {
    /// Extends `crc` (0 to start) over `bytes`.
    @inlinable
    public static func update(_ crc: UInt32, _ bytes: UnsafeRawBufferPointer) -> UInt32 {
        guard let base = bytes.baseAddress else { return crc }
        return custody_crc32c_update(crc, base, bytes.count)
    }

    public static func checksum(_ bytes: some Sequence<UInt8>) -> UInt32 {
        if let crc = bytes.withContiguousStorageIfAvailable({ update(0, UnsafeRawBufferPointer($0)) }) {
            return crc
        }
        return Array(bytes).withUnsafeBytes { update(0, $0) }
    }

    /// Whether the hardware instructions are in use on this machine.
    public static var usesHardware: Bool { custody_crc32c_hardware_available() != 0 }

    /// The table-driven implementation, for cross-checking the hardware one.
    public static func portableChecksum(_ bytes: [UInt8]) -> UInt32 {
        bytes.withUnsafeBytes { custody_crc32c_update_portable(0, $0.baseAddress, $0.count) }
    }
}
