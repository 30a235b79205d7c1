import CustodyLog
import NIOCore

/// Reads the primitives of the event encoding, checking every length against what is left and
/// every string for valid UTF-8.
struct EventReader {
    var buffer: ByteBuffer
    let start: Int

    init(_ buffer: ByteBuffer) {
        self.buffer = buffer
        self.start = buffer.readerIndex
    }

    var offset: Int { buffer.readerIndex - start }

    func fail(_ reason: String) -> EventCodecError { EventCodecError(reason, at: offset) }

    mutating func byte() throws(EventCodecError) -> UInt8 {
        guard let value = buffer.readInteger(as: UInt8.self) else { throw fail("truncated") }
        return value
    }

    mutating func varint() throws(EventCodecError) -> UInt64 {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let next = try byte()
            if shift == 63 && next > 1 { throw fail("varint overflows 64 bits") }
            value |= UInt64(next & 0x7F) << shift
            if next & 0x80 == 0 {
                if next == 0 && shift > 0 { throw fail("varint is not minimal") }
                return value
            }
            shift += 7
            if shift > 63 { throw fail("varint is too long") }
        }
    }

    mutating func uint32() throws(EventCodecError) -> UInt32 {
        let value = try varint()
        guard value <= UInt64(UInt32.max) else { throw fail("number out of range") }
        return UInt32(value)
    }

    mutating func int64() throws(EventCodecError) -> Int64 {
        guard let value = buffer.readInteger(endianness: .little, as: Int64.self) else { throw fail("truncated") }
        return value
    }

    mutating func double() throws(EventCodecError) -> Double {
        guard let bits = buffer.readInteger(endianness: .little, as: UInt64.self) else { throw fail("truncated") }
        let value = Double(bitPattern: bits)
        guard value.isFinite else { throw fail("number is not finite") }
        return value
    }

    private mutating func length(limit: Int) throws(EventCodecError) -> Int {
        let length = try varint()
        guard length <= UInt64(limit) else { throw fail("length \(length) over the limit of \(limit)") }
        guard Int(length) <= buffer.readableBytes else { throw fail("truncated") }
        return Int(length)
    }

    mutating func string(limit: Int = EventLimits.maximumStringBytes) throws(EventCodecError) -> String {
        let count = try length(limit: limit)
        let bytes = buffer.readSlice(length: count)!
        guard let string = String(validating: bytes.readableBytesView, as: UTF8.self) else { throw fail("string is not valid UTF-8") }
        return string
    }

    mutating func optional<T>(_ read: (inout EventReader) throws(EventCodecError) -> T) throws(EventCodecError) -> T? {
        switch try byte() {
        case 0: return nil
        case 1: return try read(&self)
        case let flag: throw fail("presence flag \(flag) is neither 0 nor 1")
        }
    }

    /// `count` bytes as they are.
    mutating func fixed(_ count: Int) throws(EventCodecError) -> [UInt8] {
        guard let bytes = buffer.readBytes(length: count) else { throw fail("truncated") }
        return bytes
    }

    mutating func chainValue() throws(EventCodecError) -> ChainValue {
        ChainValue(bytes: try fixed(ChainValue.byteCount))!
    }

    mutating func optionalString() throws(EventCodecError) -> String? {
        try optional { (reader: inout EventReader) throws(EventCodecError) in try reader.string() }
    }

    /// JSON text of an object: valid UTF-8 that starts with `{` and ends with `}` (it was fully
    /// validated when the event was made; this catches bytes that were never an object).
    mutating func json() throws(EventCodecError) -> JSONText {
        let count = try length(limit: EventLimits.maximumJSONBytes)
        let bytes = buffer.readSlice(length: count)!
        let view = bytes.readableBytesView
        guard count >= 2, view.first == UInt8(ascii: "{"), view.last == UInt8(ascii: "}"),
            String(validating: view, as: UTF8.self) != nil
        else { throw fail("not the JSON text of an object") }
        return JSONText(bytes)
    }

    mutating func optionalJSON() throws(EventCodecError) -> JSONText? {
        try optional { (reader: inout EventReader) throws(EventCodecError) in try reader.json() }
    }

    mutating func tag<T>(_ make: (UInt8) -> T?, _ what: String) throws(EventCodecError) -> T {
        let raw = try byte()
        guard let value = make(raw) else { throw fail("unknown \(what) \(raw)") }
        return value
    }
}

/// Sizes the codec accepts: they bound what a corrupt length can make a reader allocate, and
/// are above anything validation lets in.
public enum EventLimits {
    public static let maximumStringBytes = 64 << 10
    public static let maximumJSONBytes = 8 << 20
}
