import NIOCore

/// Writes the primitives of the event encoding (docs/log-format.md, "Events").
struct EventWriter {
    var buffer: ByteBuffer

    init(capacity: Int = 256) {
        buffer = ByteBufferAllocator().buffer(capacity: capacity)
    }

    mutating func byte(_ value: UInt8) { buffer.writeInteger(value) }

    /// Unsigned LEB128.
    mutating func varint(_ value: UInt64) {
        var value = value
        while value >= 0x80 {
            buffer.writeInteger(UInt8(truncatingIfNeeded: value) | 0x80)
            value >>= 7
        }
        buffer.writeInteger(UInt8(value))
    }

    mutating func int64(_ value: Int64) { buffer.writeInteger(value, endianness: .little) }

    mutating func double(_ value: Double) { buffer.writeInteger(value.bitPattern, endianness: .little) }

    mutating func string(_ value: String) {
        varint(UInt64(value.utf8.count))
        buffer.writeString(value)
    }

    /// A presence byte (0 absent, 1 present), then the value when present.
    mutating func optional<T>(_ value: T?, _ write: (inout EventWriter, T) -> Void) {
        if let value {
            byte(1)
            write(&self, value)
        } else {
            byte(0)
        }
    }

    mutating func optionalString(_ value: String?) { optional(value) { $0.string($1) } }

    /// Bytes of a fixed length (a chain value, a key, a signature), as they are.
    mutating func fixed(_ bytes: [UInt8]) { buffer.writeBytes(bytes) }

    mutating func json(_ value: JSONText) {
        varint(UInt64(value.bytes.readableBytes))
        buffer.writeImmutableBuffer(value.bytes)
    }

    mutating func optionalJSON(_ value: JSONText?) { optional(value) { $0.json($1) } }
}
