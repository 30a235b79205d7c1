/// Why bytes are not a protobuf message the OTLP decoder takes, and where it noticed.
///
/// ``OTLPProtobufDecoder`` refuses exactly what SwiftProtobuf's binary decoder refuses (its
/// tests hold the two to that); the reasons are SwiftProtobuf's too.
public struct OTLPDecodingError: Error, Sendable, Hashable, CustomStringConvertible {
    private enum Code: Hashable, Sendable {
        case truncated
        case malformed
        case invalidUTF8
        case tooDeep
    }

    private let code: Code
    /// The byte offset in the message at which the problem was found.
    public let offset: Int

    private init(_ code: Code, offset: Int) {
        self.code = code
        self.offset = offset
    }

    /// A field or a length runs past the end of its message.
    static func truncated(at offset: Int) -> Self { Self(.truncated, offset: offset) }
    /// A tag, a varint or a group is not valid protobuf.
    static func malformed(at offset: Int) -> Self { Self(.malformed, offset: offset) }
    /// A string field is not UTF-8.
    static func invalidUTF8(at offset: Int) -> Self { Self(.invalidUTF8, offset: offset) }
    /// Messages (or groups) nest deeper than ``OTLPProtobufDecoder/maximumDepth``.
    static func tooDeep(at offset: Int) -> Self { Self(.tooDeep, offset: offset) }

    public var description: String {
        switch code {
        case .truncated: "the message is truncated (at byte \(offset))"
        case .malformed: "the message is not valid protobuf (at byte \(offset))"
        case .invalidUTF8: "a string field is not UTF-8 (at byte \(offset))"
        case .tooDeep: "messages nest more than \(OTLPProtobufDecoder.maximumDepth) deep (at byte \(offset))"
        }
    }
}

/// Protobuf's wire format read in place from a range of a buffer, by the rules of SwiftProtobuf's
/// `BinaryDecoder` (1.39): a message's tags as `nextFieldNumber` reads them (at most five bytes,
/// a non-zero field number, wire types 0–5, no end-group outside a group), varints of at most ten
/// bytes, lengths below 2³¹ that fit what is left, and unknown fields skipped as `skipOver` skips
/// them, groups included (whose inner tags are read as full varints). Nothing is copied.
struct ProtobufReader {
    /// Wire types.
    static let varint: UInt8 = 0
    static let fixed64: UInt8 = 1
    static let lengthDelimited: UInt8 = 2
    static let startGroup: UInt8 = 3
    static let endGroup: UInt8 = 4
    static let fixed32: UInt8 = 5

    /// A field's tag.
    struct Tag {
        var number: Int
        var wireType: UInt8
    }

    let bytes: UnsafeRawBufferPointer
    private(set) var position: Int
    let end: Int

    init(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) {
        self.bytes = bytes
        self.position = range.lowerBound
        self.end = range.upperBound
    }

    /// The next field's tag, or nil at the end of the message.
    mutating func nextTag() throws(OTLPDecodingError) -> Tag? {
        guard position < end else { return nil }
        let start = position
        let available = end - position
        let c0 = bytes[start]
        let wireType = c0 & 7
        guard wireType <= Self.fixed32 else { throw .malformed(at: start) }
        var number: Int
        if c0 & 0x80 == 0 {
            position += 1
            number = Int(c0) >> 3
        } else {
            number = Int(c0 & 0x7F) >> 3
            guard available >= 2 else { throw .malformed(at: start) }
            let c1 = bytes[start + 1]
            if c1 & 0x80 == 0 {
                position += 2
                number |= Int(c1) << 4
            } else {
                number |= Int(c1 & 0x7F) << 4
                guard available >= 3 else { throw .malformed(at: start) }
                let c2 = bytes[start + 2]
                number |= Int(c2 & 0x7F) << 11
                if c2 & 0x80 == 0 {
                    position += 3
                } else {
                    guard available >= 4 else { throw .malformed(at: start) }
                    let c3 = bytes[start + 3]
                    number |= Int(c3 & 0x7F) << 18
                    if c3 & 0x80 == 0 {
                        position += 4
                    } else {
                        guard available >= 5 else { throw .malformed(at: start) }
                        let c4 = bytes[start + 4]
                        guard c4 <= 15 else { throw .malformed(at: start) }
                        number |= Int(c4 & 0x7F) << 25
                        position += 5
                    }
                }
            }
        }
        // Field 0 does not exist; an end-group outside a group is invalid.
        guard number != 0, wireType != Self.endGroup else { throw .malformed(at: start) }
        return Tag(number: number, wireType: wireType)
    }

    mutating func varint() throws(OTLPDecodingError) -> UInt64 {
        guard position < end else { throw .truncated(at: position) }
        let start = position
        var byte = bytes[position]
        position += 1
        if byte & 0x80 == 0 { return UInt64(byte) }
        var value = UInt64(byte & 0x7F)
        var shift: UInt64 = 7
        while true {
            guard position < end, shift <= 63 else { throw .malformed(at: start) }
            byte = bytes[position]
            position += 1
            value |= UInt64(byte & 0x7F) &<< shift
            if byte & 0x80 == 0 { return value }
            shift &+= 7
        }
    }

    mutating func fixed64() throws(OTLPDecodingError) -> UInt64 {
        guard end - position >= 8 else { throw .truncated(at: position) }
        let value = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: position, as: UInt64.self))
        position += 8
        return value
    }

    /// The body of a length-delimited field (a string, bytes, or an embedded message).
    mutating func lengthDelimited() throws(OTLPDecodingError) -> Range<Int> {
        let start = position
        let length = try varint()
        guard length < 0x7FFF_FFFF else { throw .malformed(at: start) }
        guard length <= UInt64(end - position) else { throw .truncated(at: start) }
        let body = position..<(position + Int(length))
        position = body.upperBound
        return body
    }

    /// The body of a string field, once it is known to be UTF-8 (as SwiftProtobuf checks it:
    /// `Unicode.UTF8.ForwardParser`, after a look for ASCII).
    mutating func string() throws(OTLPDecodingError) -> Range<Int> {
        let body = try lengthDelimited()
        let text = UnsafeRawBufferPointer(rebasing: bytes[body])
        if text.contains(where: { $0 >= 0x80 }) {
            var parser = Unicode.UTF8.ForwardParser()
            var iterator = text.makeIterator()
            scan: while true {
                switch parser.parseScalar(from: &iterator) {
                case .valid: continue
                case .error: throw .invalidUTF8(at: body.lowerBound)
                case .emptyInput: break scan
                }
            }
        }
        return body
    }

    /// Skips the value of a field this decoder does not read (or reads with another wire type),
    /// checking it as SwiftProtobuf does when it keeps it as an unknown field. `depth` is that of
    /// the message the field is in: a group nests one deeper.
    mutating func skip(_ tag: Tag, depth: Int) throws(OTLPDecodingError) {
        switch tag.wireType {
        case Self.varint:
            _ = try varint()
        case Self.fixed64:
            guard end - position >= 8 else { throw .truncated(at: position) }
            position += 8
        case Self.lengthDelimited:
            let start = position
            let length = try varint()
            guard length <= UInt64(end - position) else { throw .truncated(at: start) }
            position += Int(length)
        case Self.startGroup:
            guard depth + 1 <= OTLPProtobufDecoder.maximumDepth else { throw .tooDeep(at: position) }
            while true {
                guard position < end else { throw .truncated(at: position) }
                let start = position
                let inner = try groupTag()
                if inner.wireType == Self.endGroup {
                    guard inner.number == tag.number else { throw .malformed(at: start) }
                    return
                }
                try skip(inner, depth: depth + 1)
            }
        case Self.fixed32:
            guard end - position >= 4 else { throw .truncated(at: position) }
            position += 4
        default:
            throw .truncated(at: position)
        }
    }

    /// A tag inside a group being skipped: a full varint below 2³²−1 with a non-zero field number
    /// and a wire type 0–5.
    private mutating func groupTag() throws(OTLPDecodingError) -> Tag {
        let start = position
        let value = try varint()
        guard value < UInt64(UInt32.max) else { throw .malformed(at: start) }
        let raw = UInt32(truncatingIfNeeded: value)
        guard raw & ~0x07 != 0, raw & 7 <= UInt32(Self.fixed32) else { throw .malformed(at: start) }
        return Tag(number: Int(raw >> 3), wireType: UInt8(raw & 7))
    }
}
