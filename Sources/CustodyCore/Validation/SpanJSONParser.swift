import NIOCore

/// Parses the body of `recordLog` — one span entry, an array of them, or `{"entries": [...]}` —
/// straight from the request's UTF-8 bytes, in one pass.
///
/// Why not `JSONDecoder`: ingest is the hot path, and decoding a span through `Decodable`, with
/// its `details` as a ``JSONValue`` that is then encoded again, cost ~13 µs a span (a third of the
/// server's time at 70,000 spans/s, measured with `perf`). This parser checks the whole JSON
/// grammar, UTF-8 included, but builds only the strings of the known fields; `details` is kept as
/// the client sent it: its bytes, checked, never re-encoded.
///
/// Guarantees: the same answers as decoding with `JSONDecoder` into ``SpanInput`` — a body that
/// is not JSON (syntax, invalid UTF-8, a raw control character in a string, nesting deeper than
/// `maximumDepth`) is ``CoreError/Code/invalidJSON``; a field of the wrong type is
/// ``CoreError/Code/invalidArgument`` naming it (`entries[3].duration_ms`); unknown fields are
/// ignored; `null` counts as absent. Nothing is read past the end of the buffer, whatever the input.
public struct SpanJSONParser {
    private let bytes: UnsafeRawBufferPointer
    private var index = 0
    private let maximumDepth: Int

    /// Parses `body` (the readable bytes) as a `recordLog` body.
    public static func parseLogBody(_ body: ByteBuffer, maximumDepth: Int = 64) throws(CoreError) -> LogOperations.Entries {
        let result: Result<LogOperations.Entries, CoreError> = body.withUnsafeReadableBytes { bytes in
            var parser = SpanJSONParser(bytes: bytes, maximumDepth: maximumDepth)
            do throws(CoreError) {
                return .success(try parser.parseBody())
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    /// Checks that `body` is one JSON value (RFC 8259, strictly: no trailing commas, no leading
    /// zeros, valid escapes, UTF-8, no lone surrogates) nested at most `maximumDepth` deep.
    /// Foundation's decoder is more lenient than this, and checks only the strings it decodes.
    public static func validate(_ body: ByteBuffer, maximumDepth: Int = 64) throws(CoreError) {
        let result: CoreError? = body.withUnsafeReadableBytes { bytes in
            var parser = SpanJSONParser(bytes: bytes, maximumDepth: maximumDepth)
            do throws(CoreError) {
                parser.skipWhitespace()
                guard parser.index < bytes.count else { throw Self.syntax("the body is empty; it must be JSON") }
                try parser.skipValue(depth: 1)
                try parser.expectEnd()
                return nil
            } catch {
                return error
            }
        }
        if let result { throw result }
    }

    init(bytes: UnsafeRawBufferPointer, maximumDepth: Int) {
        self.bytes = bytes
        self.maximumDepth = maximumDepth
    }

    // MARK: The body

    mutating func parseBody() throws(CoreError) -> LogOperations.Entries {
        skipWhitespace()
        guard index < bytes.count else { throw Self.syntax("the body is empty; it must be JSON") }
        // Errors about the values wait until the whole body is known to be JSON: a body that is not
        // JSON is reported as such, wherever its first type error is.
        switch bytes[index] {
        case UInt8(ascii: "["):
            let list = try parseEntryList(prefix: "entries", depth: 1)
            try expectEnd()
            return .many(try list.get())
        case UInt8(ascii: "{"):
            let fields = try scanObject(depth: 1)
            try expectEnd()
            guard let list = fields.entries else { return .one(try span(from: fields)) }
            guard list.first == UInt8(ascii: "[") else { throw CoreError.invalidArgument("entries", "must be an array of entries") }
            var nested = SpanJSONParser(bytes: bytes, maximumDepth: maximumDepth)
            nested.index = list.start
            return .many(try nested.parseEntryList(prefix: "entries", depth: 2).get())
        default:
            try skipValue(depth: 1)
            try expectEnd()
            throw Self.syntax("the body must be a JSON object or an array of objects")
        }
    }

    mutating func expectEnd() throws(CoreError) {
        skipWhitespace()
        guard index == bytes.count else { throw Self.syntax("the body is not valid JSON: something follows the value") }
    }

    /// Parses an array of span objects; a syntax error is thrown at once, the first error about
    /// a value is returned once the array is known to be valid JSON.
    mutating func parseEntryList(prefix: String, depth: Int) throws(CoreError) -> Result<[SpanInput], CoreError> {
        try checkDepth(depth)
        index += 1  // [
        var entries: [SpanInput] = []
        var firstError: CoreError?
        var position = 0
        skipWhitespace()
        if peek() == UInt8(ascii: "]") {
            index += 1
            return .success(entries)
        }
        while true {
            skipWhitespace()
            guard index < bytes.count else { throw Self.syntax("the body is not valid JSON: it ends inside an array") }
            if bytes[index] == UInt8(ascii: "{") {
                let fields = try scanObject(depth: depth + 1)
                if firstError == nil {
                    do throws(CoreError) {
                        entries.append(try span(from: fields))
                    } catch {
                        firstError = error.code == .invalidJSON ? error : error.prefixingField("\(prefix)[\(position)]")
                    }
                }
            } else {
                try skipValue(depth: depth + 1)
                if firstError == nil { firstError = CoreError.invalidArgument("\(prefix)[\(position)]", "must be a JSON object") }
            }
            position += 1
            if position > LogOperations.maximumEntries {
                // Refused without reading on: the list can only be refused.
                throw CoreError.invalidArgument(prefix, "holds more than \(LogOperations.maximumEntries) entries")
            }
            skipWhitespace()
            guard index < bytes.count else { throw Self.syntax("the body is not valid JSON: it ends inside an array") }
            switch bytes[index] {
            case UInt8(ascii: ","): index += 1
            case UInt8(ascii: "]"):
                index += 1
                if let firstError { return .failure(firstError) }
                return .success(entries)
            default: throw Self.syntax("the body is not valid JSON: expected , or ] in an array")
            }
        }
    }

    // MARK: A span object

    /// Where a known field's value is in the body, and what JSON type it starts with.
    struct Value {
        var start: Int
        var end: Int
        var first: UInt8
    }

    /// The known fields of one object (later duplicates win, as with JSONDecoder).
    struct SpanFields {
        var traceId: Value?
        var spanId: Value?
        var parentSpanId: Value?
        var source: Value?
        var stage: Value?
        var operation: Value?
        var taskUUID: Value?
        var durationMs: Value?
        var timestamp: Value?
        var details: Value?
        var entries: Value?
    }

    /// Checks one object and notes where its known fields' values are.
    mutating func scanObject(depth: Int) throws(CoreError) -> SpanFields {
        try checkDepth(depth)
        index += 1  // {
        var fields = SpanFields()
        skipWhitespace()
        if peek() == UInt8(ascii: "}") {
            index += 1
            return fields
        }
        while true {
            skipWhitespace()
            guard peek() == UInt8(ascii: "\"") else { throw Self.syntax("the body is not valid JSON: expected a key in an object") }
            let key = try scanString()
            skipWhitespace()
            guard peek() == UInt8(ascii: ":") else { throw Self.syntax("the body is not valid JSON: expected : after a key") }
            index += 1
            skipWhitespace()
            guard index < bytes.count else { throw Self.syntax("the body is not valid JSON: it ends inside an object") }
            let start = index
            let first = bytes[index]
            try skipValue(depth: depth + 1)
            let value = Value(start: start, end: index, first: first)
            if !key.escaped {
                switch key.length {
                case 5 where matches(key, "stage"): fields.stage = value
                case 6 where matches(key, "source"): fields.source = value
                case 7 where matches(key, "span_id"): fields.spanId = value
                case 7 where matches(key, "details"): fields.details = value
                case 7 where matches(key, "entries"): fields.entries = value
                case 8 where matches(key, "trace_id"): fields.traceId = value
                case 9 where matches(key, "operation"): fields.operation = value
                case 9 where matches(key, "task_uuid"): fields.taskUUID = value
                case 9 where matches(key, "timestamp"): fields.timestamp = value
                case 11 where matches(key, "duration_ms"): fields.durationMs = value
                case 14 where matches(key, "parent_span_id"): fields.parentSpanId = value
                default: break
                }
            } else if let name = decodeString(key), let known = Self.knownKey(name) {
                // A key spelled with escapes is still that key.
                switch known {
                case "stage": fields.stage = value
                case "source": fields.source = value
                case "span_id": fields.spanId = value
                case "details": fields.details = value
                case "entries": fields.entries = value
                case "trace_id": fields.traceId = value
                case "operation": fields.operation = value
                case "task_uuid": fields.taskUUID = value
                case "timestamp": fields.timestamp = value
                case "duration_ms": fields.durationMs = value
                default: fields.parentSpanId = value
                }
            }
            skipWhitespace()
            guard index < bytes.count else { throw Self.syntax("the body is not valid JSON: it ends inside an object") }
            switch bytes[index] {
            case UInt8(ascii: ","): index += 1
            case UInt8(ascii: "}"):
                index += 1
                return fields
            default: throw Self.syntax("the body is not valid JSON: expected , or } in an object")
            }
        }
    }

    static let knownKeys: Set<String> = [
        "stage", "source", "span_id", "details", "entries", "trace_id", "operation", "task_uuid", "timestamp", "duration_ms", "parent_span_id",
    ]
    static func knownKey(_ name: String) -> String? { knownKeys.contains(name) ? name : nil }

    /// The span an object describes; type errors name the field.
    func span(from fields: SpanFields) throws(CoreError) -> SpanInput {
        var input = SpanInput()
        input.traceId = try string(fields.traceId, "trace_id")
        input.spanId = try string(fields.spanId, "span_id")
        input.parentSpanId = try string(fields.parentSpanId, "parent_span_id")
        input.source = try string(fields.source, "source")
        input.stage = try string(fields.stage, "stage")
        input.operation = try string(fields.operation, "operation")
        input.taskUUID = try string(fields.taskUUID, "task_uuid")
        input.timestamp = try string(fields.timestamp, "timestamp")
        if let value = fields.durationMs, value.first != UInt8(ascii: "n") {
            guard value.first == UInt8(ascii: "-") || (value.first >= UInt8(ascii: "0") && value.first <= UInt8(ascii: "9")) else {
                throw CoreError.invalidArgument("duration_ms", "must be a number")
            }
            guard let number = Double(String(decoding: UnsafeRawBufferPointer(rebasing: bytes[value.start..<value.end]), as: UTF8.self)) else {
                throw CoreError.invalidArgument("duration_ms", "must be a number")
            }
            input.durationMs = number
        }
        if let value = fields.details, value.first != UInt8(ascii: "n") {
            guard value.first == UInt8(ascii: "{") else { throw CoreError.invalidArgument("details", "must be a JSON object") }
            input.detailsText = JSONText(ByteBuffer(bytes: UnsafeRawBufferPointer(rebasing: bytes[value.start..<value.end])))
        }
        return input
    }

    func string(_ value: Value?, _ field: String) throws(CoreError) -> String? {
        guard let value, value.first != UInt8(ascii: "n") else { return nil }
        guard value.first == UInt8(ascii: "\"") else { throw CoreError.invalidArgument(field, "must be a string") }
        var reader = SpanJSONParser(bytes: bytes, maximumDepth: maximumDepth)
        reader.index = value.start
        let scanned = try reader.scanString()
        guard let text = decodeString(scanned) else { throw Self.syntax("the body is not valid JSON: a string is not valid UTF-8") }
        return text
    }

    // MARK: JSON grammar

    /// A string's contents (between the quotes) and whether it has escapes.
    struct ScannedString {
        var start: Int
        var length: Int
        var escaped: Bool
    }

    func matches(_ string: ScannedString, _ literal: StaticString) -> Bool {
        literal.withUTF8Buffer { expected in
            guard string.length == expected.count else { return false }
            for offset in 0..<expected.count where bytes[string.start + offset] != expected[offset] { return false }
            return true
        }
    }

    /// Checks a string (escapes, control characters, UTF-8) and moves past it.
    mutating func scanString() throws(CoreError) -> ScannedString {
        index += 1  // "
        let start = index
        var escaped = false
        var ascii = true
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                let string = ScannedString(start: start, length: index - start, escaped: escaped)
                index += 1
                if !ascii { try validateUTF8(from: start, to: string.start + string.length) }
                return string
            }
            if byte == UInt8(ascii: "\\") {
                escaped = true
                index += 1
                guard index < bytes.count else { break }
                switch bytes[index] {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"), UInt8(ascii: "n"),
                    UInt8(ascii: "r"), UInt8(ascii: "t"):
                    index += 1
                case UInt8(ascii: "u"):
                    let code = try hexEscape(at: index + 1)
                    index += 5
                    if (0xDC00...0xDFFF).contains(code) { throw Self.syntax("the body is not valid JSON: a lone surrogate in a string") }
                    if (0xD800...0xDBFF).contains(code) {
                        // A high surrogate must be followed by the escape of a low one.
                        guard index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u"),
                            (0xDC00...0xDFFF).contains(try hexEscape(at: index + 2))
                        else { throw Self.syntax("the body is not valid JSON: a lone surrogate in a string") }
                        index += 6
                    }
                default:
                    throw Self.syntax("the body is not valid JSON: an unknown escape in a string")
                }
                continue
            }
            if byte < 0x20 { throw Self.syntax("the body is not valid JSON: a control character in a string must be escaped") }
            if byte >= 0x80 { ascii = false }
            index += 1
        }
        throw Self.syntax("the body is not valid JSON: a string is not closed")
    }

    /// The value of the four hex digits at `at`.
    func hexEscape(at position: Int) throws(CoreError) -> UInt32 {
        guard position + 3 < bytes.count else { throw Self.syntax("the body is not valid JSON: a \\u escape needs four hex digits") }
        var code: UInt32 = 0
        for offset in 0..<4 {
            guard let digit = Hex.value(bytes[position + offset]) else {
                throw Self.syntax("the body is not valid JSON: a \\u escape needs four hex digits")
            }
            code = code << 4 | UInt32(digit)
        }
        return code
    }

    func validateUTF8(from start: Int, to end: Int) throws(CoreError) {
        let slice = UnsafeRawBufferPointer(rebasing: bytes[start..<end])
        guard String(validating: slice.assumingMemoryBound(to: UInt8.self), as: UTF8.self) != nil else {
            throw Self.syntax("the body is not valid JSON: a string is not valid UTF-8")
        }
    }

    /// The text of a scanned string, escapes decoded; nil for a lone surrogate escape.
    func decodeString(_ string: ScannedString) -> String? {
        let raw = UnsafeRawBufferPointer(rebasing: bytes[string.start..<(string.start + string.length)])
        guard string.escaped else { return String(decoding: raw, as: UTF8.self) }
        var scalars = String.UnicodeScalarView()
        var utf8: [UInt8] = []
        var position = 0
        func flush() {
            if !utf8.isEmpty {
                scalars.append(contentsOf: String(decoding: utf8, as: UTF8.self).unicodeScalars)
                utf8.removeAll(keepingCapacity: true)
            }
        }
        while position < raw.count {
            let byte = raw[position]
            guard byte == UInt8(ascii: "\\") else {
                utf8.append(byte)
                position += 1
                continue
            }
            flush()
            let kind = raw[position + 1]
            position += 2
            switch kind {
            case UInt8(ascii: "b"): scalars.append("\u{08}")
            case UInt8(ascii: "f"): scalars.append("\u{0C}")
            case UInt8(ascii: "n"): scalars.append("\n")
            case UInt8(ascii: "r"): scalars.append("\r")
            case UInt8(ascii: "t"): scalars.append("\t")
            case UInt8(ascii: "u"):
                var code = Self.hex4(raw, position)
                position += 4
                if (0xD800...0xDBFF).contains(code) {
                    // A high surrogate must be followed by \u and a low one.
                    guard position + 6 <= raw.count, raw[position] == UInt8(ascii: "\\"), raw[position + 1] == UInt8(ascii: "u") else { return nil }
                    let low = Self.hex4(raw, position + 2)
                    guard (0xDC00...0xDFFF).contains(low) else { return nil }
                    code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                    position += 6
                } else if (0xDC00...0xDFFF).contains(code) {
                    return nil
                }
                guard let scalar = Unicode.Scalar(code) else { return nil }
                scalars.append(scalar)
            default: scalars.append(Unicode.Scalar(kind))  // " \ /
            }
        }
        flush()
        return String(scalars)
    }

    static func hex4(_ raw: UnsafeRawBufferPointer, _ at: Int) -> UInt32 {
        (0..<4).reduce(UInt32(0)) { $0 << 4 | UInt32(Hex.value(raw[at + $1]) ?? 0) }
    }

    /// Checks any JSON value and moves past it.
    mutating func skipValue(depth: Int) throws(CoreError) {
        skipWhitespace()
        guard index < bytes.count else { throw Self.syntax("the body is not valid JSON: a value is missing") }
        switch bytes[index] {
        case UInt8(ascii: "\""): _ = try scanString()
        case UInt8(ascii: "{"):
            try checkDepth(depth)
            index += 1
            skipWhitespace()
            if peek() == UInt8(ascii: "}") {
                index += 1
                return
            }
            while true {
                skipWhitespace()
                guard peek() == UInt8(ascii: "\"") else { throw Self.syntax("the body is not valid JSON: expected a key in an object") }
                _ = try scanString()
                skipWhitespace()
                guard peek() == UInt8(ascii: ":") else { throw Self.syntax("the body is not valid JSON: expected : after a key") }
                index += 1
                try skipValue(depth: depth + 1)
                skipWhitespace()
                guard index < bytes.count else { throw Self.syntax("the body is not valid JSON: it ends inside an object") }
                if bytes[index] == UInt8(ascii: ",") {
                    index += 1
                } else if bytes[index] == UInt8(ascii: "}") {
                    index += 1
                    return
                } else {
                    throw Self.syntax("the body is not valid JSON: expected , or } in an object")
                }
            }
        case UInt8(ascii: "["):
            try checkDepth(depth)
            index += 1
            skipWhitespace()
            if peek() == UInt8(ascii: "]") {
                index += 1
                return
            }
            while true {
                try skipValue(depth: depth + 1)
                skipWhitespace()
                guard index < bytes.count else { throw Self.syntax("the body is not valid JSON: it ends inside an array") }
                if bytes[index] == UInt8(ascii: ",") {
                    index += 1
                } else if bytes[index] == UInt8(ascii: "]") {
                    index += 1
                    return
                } else {
                    throw Self.syntax("the body is not valid JSON: expected , or ] in an array")
                }
            }
        case UInt8(ascii: "t"): try literal("true")
        case UInt8(ascii: "f"): try literal("false")
        case UInt8(ascii: "n"): try literal("null")
        default: try scanNumber()
        }
    }

    mutating func literal(_ word: StaticString) throws(CoreError) {
        let length = word.utf8CodeUnitCount
        let start = index
        guard start + length <= bytes.count,
            word.withUTF8Buffer({ expected in (0..<length).allSatisfy { bytes[start + $0] == expected[$0] } })
        else { throw Self.syntax("the body is not valid JSON") }
        index += length
    }

    /// RFC 8259 numbers: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
    mutating func scanNumber() throws(CoreError) {
        func digits() -> Int {
            let start = index
            while index < bytes.count, bytes[index] >= UInt8(ascii: "0"), bytes[index] <= UInt8(ascii: "9") { index += 1 }
            return index - start
        }
        if peek() == UInt8(ascii: "-") { index += 1 }
        if peek() == UInt8(ascii: "0") {
            index += 1
        } else if digits() == 0 {
            throw Self.syntax("the body is not valid JSON")
        }
        if peek() == UInt8(ascii: ".") {
            index += 1
            guard digits() > 0 else { throw Self.syntax("the body is not valid JSON: a number needs digits after the point") }
        }
        if peek() == UInt8(ascii: "e") || peek() == UInt8(ascii: "E") {
            index += 1
            if peek() == UInt8(ascii: "+") || peek() == UInt8(ascii: "-") { index += 1 }
            guard digits() > 0 else { throw Self.syntax("the body is not valid JSON: a number needs digits in its exponent") }
        }
    }

    mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x0A, 0x0D, 0x09: index += 1
            default: return
            }
        }
    }

    func peek() -> UInt8? { index < bytes.count ? bytes[index] : nil }

    func checkDepth(_ depth: Int) throws(CoreError) {
        guard depth <= maximumDepth else { throw Self.syntax("the JSON is nested deeper than \(maximumDepth) levels") }
    }

    static func syntax(_ message: String) -> CoreError { CoreError(.invalidJSON, message) }
}
