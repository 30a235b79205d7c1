import CustodyCore
import NIOCore

/// How OTLP's values are written into a span's `details`, shared by the two decoders of an export
/// (``OTLPSpanMapping`` over SwiftProtobuf's messages, ``OTLPProtobufDecoder`` over the bytes) so
/// that the same value is the same JSON text whichever decoded it.
enum OTLPValues {
    static func writeInteger(_ number: Int64, into out: inout ByteBuffer) {
        JSONValue.integer(number).write(into: &out)
    }

    /// A finite double as a JSON number; infinities and NaN, which JSON has no numbers for, as
    /// strings (`"inf"`, `"-inf"`, `"nan"`).
    static func writeDouble(_ number: Double, into out: inout ByteBuffer) {
        if number.isFinite {
            JSONValue.number(number).write(into: &out)
        } else {
            JSONValue.writeString(String(number), into: &out)
        }
    }

    /// Bytes (an id, a `bytes_value`) as a JSON string of lower-case hex.
    static func writeHex(_ bytes: some Collection<UInt8>, into out: inout ByteBuffer) {
        out.writeInteger(UInt8(ascii: "\""))
        for byte in bytes {
            out.writeInteger(Hex.digits[Int(byte >> 4)])
            out.writeInteger(Hex.digits[Int(byte & 0x0F)])
        }
        out.writeInteger(UInt8(ascii: "\""))
    }

    /// `SPAN_KIND_…` for a kind's number (`SPAN_KIND_<n>` for one OTLP does not define).
    static func kindName(_ kind: Int) -> String {
        switch kind {
        case 0: "SPAN_KIND_UNSPECIFIED"
        case 1: "SPAN_KIND_INTERNAL"
        case 2: "SPAN_KIND_SERVER"
        case 3: "SPAN_KIND_CLIENT"
        case 4: "SPAN_KIND_PRODUCER"
        case 5: "SPAN_KIND_CONSUMER"
        default: "SPAN_KIND_\(kind)"
        }
    }

    /// `STATUS_CODE_…` for a status code's number (`STATUS_CODE_<n>` for one OTLP does not define).
    static func statusName(_ code: Int) -> String {
        switch code {
        case 0: "STATUS_CODE_UNSET"
        case 1: "STATUS_CODE_OK"
        case 2: "STATUS_CODE_ERROR"
        default: "STATUS_CODE_\(code)"
        }
    }

    /// The status code that makes a span an error span.
    static let errorStatus = 2
}
