import CustodyCore
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An OTLP `ExportTraceServiceRequest` in protobuf, decoded straight into ``SpanInput``s without
/// SwiftProtobuf's messages (docs/benchmarks.md P4): ids and strings are read where they lie in
/// the buffer, and each span's `details` is written as JSON bytes as its fields are read.
///
/// Guarantees, which its tests hold it to against SwiftProtobuf's decoding followed by
/// ``OTLPSpanMapping`` (the reference):
/// - For bytes SwiftProtobuf decodes, the spans are the same, `details` byte for byte.
/// - Bytes SwiftProtobuf refuses are refused (``OTLPDecodingError``), whole: no span of them is
///   returned.
/// - Protobuf's merge rules hold: a singular message field given twice is one message with both
///   bodies' fields (a later scalar wins, repeated fields add up), a later member of a oneof
///   replaces an earlier one of another kind, a field with an unexpected wire type is skipped
///   as an unknown one.
/// - Work is linear in the bytes, apart from sorting each attribute list (n log n).
public enum OTLPProtobufDecoder {
    /// How deep messages may nest, the request itself counting as one (SwiftProtobuf's default
    /// `messageDepthLimit`).
    public static let maximumDepth = 100

    /// The spans of an export request, in order.
    public static func spans(from buffer: ByteBuffer) throws(OTLPDecodingError) -> [SpanInput] {
        let result: Result<[SpanInput], OTLPDecodingError> = buffer.withUnsafeReadableBytes { bytes in
            Result { () throws(OTLPDecodingError) in try spans(from: bytes) }
        }
        return try result.get()
    }

    /// The spans of an export request held in `bytes`, in order.
    public static func spans(from bytes: UnsafeRawBufferPointer) throws(OTLPDecodingError) -> [SpanInput] {
        guard !bytes.isEmpty else { return [] }
        var decoder = Decoder(bytes: bytes)
        try decoder.request()
        return decoder.spans
    }
}

extension OTLPProtobufDecoder {
    /// An `AnyValue` as its fields left it (the last member of the oneof set, merged when a
    /// message member was given more than once): ranges into the buffer.
    enum Value {
        case none
        case string(Range<Int>)
        case bool(Bool)
        case integer(Int64)
        case double(Double)
        case bytes(Range<Int>)
        /// The bodies of the `ArrayValue`s given, to be read as one.
        case array([Range<Int>])
        /// The bodies of the `KeyValueList`s given, to be read as one.
        case keyValueList([Range<Int>])
    }

    /// A `KeyValue`: the key's UTF-8 bytes and the value.
    struct Attribute {
        var key: Range<Int>
        var value: Value
    }

    struct Event {
        var time: UInt64 = 0
        var name: Range<Int> = 0..<0
        var attributes: [Attribute] = []
    }

    struct Link {
        var traceID: Range<Int> = 0..<0
        var spanID: Range<Int> = 0..<0
        var attributes: [Attribute] = []
    }

    struct Decoder {
        let bytes: UnsafeRawBufferPointer
        var spans: [SpanInput] = []

        init(bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

        func reader(_ range: Range<Int>) -> ProtobufReader { ProtobufReader(bytes, range) }

        func enter(_ depth: Int, at offset: Int) throws(OTLPDecodingError) {
            guard depth <= OTLPProtobufDecoder.maximumDepth else { throw .tooDeep(at: offset) }
        }

        func slice(_ range: Range<Int>) -> UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: bytes[range]) }

        func string(_ range: Range<Int>) -> String { String(decoding: slice(range), as: UTF8.self) }

        func hex(_ range: Range<Int>) -> String { Hex.encode(slice(range)) }

        /// `ExportTraceServiceRequest`: `repeated ResourceSpans resource_spans = 1`.
        mutating func request() throws(OTLPDecodingError) {
            var fields = reader(0..<bytes.count)
            while let tag = try fields.nextTag() {
                if tag.number == 1, tag.wireType == ProtobufReader.lengthDelimited {
                    try resourceSpans(try fields.lengthDelimited(), depth: 2)
                } else {
                    try fields.skip(tag, depth: 1)
                }
            }
        }

        /// `ResourceSpans`: `Resource resource = 1; repeated ScopeSpans scope_spans = 2; string
        /// schema_url = 3`. The resource may come after the spans: both are collected first.
        mutating func resourceSpans(_ body: Range<Int>, depth: Int) throws(OTLPDecodingError) {
            try enter(depth, at: body.lowerBound)
            var resources: [Range<Int>] = []
            var scopes: [Range<Int>] = []
            var fields = reader(body)
            while let tag = try fields.nextTag() {
                switch (tag.number, tag.wireType) {
                case (1, ProtobufReader.lengthDelimited): resources.append(try fields.lengthDelimited())
                case (2, ProtobufReader.lengthDelimited): scopes.append(try fields.lengthDelimited())
                case (3, ProtobufReader.lengthDelimited): _ = try fields.string()
                default: try fields.skip(tag, depth: depth)
                }
            }
            // `Resource`: `repeated KeyValue attributes = 1; uint32 dropped_attributes_count = 2`.
            var attributes: [Attribute] = []
            for resource in resources {
                try enter(depth + 1, at: resource.lowerBound)
                var fields = reader(resource)
                while let tag = try fields.nextTag() {
                    if tag.number == 1, tag.wireType == ProtobufReader.lengthDelimited {
                        attributes.append(try keyValue(try fields.lengthDelimited(), depth: depth + 2, checkingNested: true))
                    } else {
                        try fields.skip(tag, depth: depth + 1)
                    }
                }
            }
            var source: String?
            if let service = attributes.last(where: { equals($0.key, "service.name") }), case .string(let name) = service.value, !name.isEmpty {
                source = string(name)
            }
            var resource = ByteBuffer()
            if !attributes.isEmpty { try writeAttributes(attributes, depth: depth + 2, into: &resource) }
            for scope in scopes {
                try scopeSpans(scope, depth: depth + 1, source: source, resource: resource)
            }
        }

        /// `ScopeSpans`: `InstrumentationScope scope = 1; repeated Span spans = 2; string
        /// schema_url = 3`.
        mutating func scopeSpans(_ body: Range<Int>, depth: Int, source: String?, resource: ByteBuffer) throws(OTLPDecodingError) {
            try enter(depth, at: body.lowerBound)
            var scopes: [Range<Int>] = []
            var spanBodies: [Range<Int>] = []
            var fields = reader(body)
            while let tag = try fields.nextTag() {
                switch (tag.number, tag.wireType) {
                case (1, ProtobufReader.lengthDelimited): scopes.append(try fields.lengthDelimited())
                case (2, ProtobufReader.lengthDelimited): spanBodies.append(try fields.lengthDelimited())
                case (3, ProtobufReader.lengthDelimited): _ = try fields.string()
                default: try fields.skip(tag, depth: depth)
                }
            }
            // `InstrumentationScope`: `string name = 1; string version = 2; repeated KeyValue
            // attributes = 3; uint32 dropped_attributes_count = 4`.
            var name = 0..<0
            var version = 0..<0
            for scope in scopes {
                try enter(depth + 1, at: scope.lowerBound)
                var fields = reader(scope)
                while let tag = try fields.nextTag() {
                    switch (tag.number, tag.wireType) {
                    case (1, ProtobufReader.lengthDelimited): name = try fields.string()
                    case (2, ProtobufReader.lengthDelimited): version = try fields.string()
                    case (3, ProtobufReader.lengthDelimited):
                        _ = try keyValue(try fields.lengthDelimited(), depth: depth + 2, checkingNested: true)
                    default: try fields.skip(tag, depth: depth + 1)
                    }
                }
            }
            var scope = ByteBuffer()
            if !name.isEmpty || !version.isEmpty {
                scope.writeStaticString("{")
                if !name.isEmpty {
                    scope.writeStaticString("\"name\":")
                    JSONValue.writeString(utf8: slice(name), into: &scope)
                }
                if !version.isEmpty {
                    if !name.isEmpty { scope.writeStaticString(",") }
                    scope.writeStaticString("\"version\":")
                    JSONValue.writeString(utf8: slice(version), into: &scope)
                }
                scope.writeStaticString("}")
            }
            spans.reserveCapacity(spans.count + spanBodies.count)
            for span in spanBodies {
                spans.append(try self.span(span, depth: depth + 1, source: source, resource: resource, scope: scope))
            }
        }

        /// `Span` (trace.proto), mapped as ``OTLPSpanMapping`` maps it.
        func span(_ body: Range<Int>, depth: Int, source: String?, resource: ByteBuffer, scope: ByteBuffer) throws(OTLPDecodingError) -> SpanInput {
            try enter(depth, at: body.lowerBound)
            var traceID = 0..<0
            var spanID = 0..<0
            var parentSpanID = 0..<0
            var traceState = 0..<0
            var name = 0..<0
            var kind = 0
            var start: UInt64 = 0
            var end: UInt64 = 0
            var attributes: [Attribute] = []
            var events: [Event] = []
            var links: [Link] = []
            var statusCode = 0
            var statusMessage = 0..<0
            var fields = reader(body)
            while let tag = try fields.nextTag() {
                switch (tag.number, tag.wireType) {
                case (1, ProtobufReader.lengthDelimited): traceID = try fields.lengthDelimited()
                case (2, ProtobufReader.lengthDelimited): spanID = try fields.lengthDelimited()
                case (3, ProtobufReader.lengthDelimited): traceState = try fields.string()
                case (4, ProtobufReader.lengthDelimited): parentSpanID = try fields.lengthDelimited()
                case (5, ProtobufReader.lengthDelimited): name = try fields.string()
                case (6, ProtobufReader.varint): kind = Int(Int32(truncatingIfNeeded: try fields.varint()))
                case (7, ProtobufReader.fixed64): start = try fields.fixed64()
                case (8, ProtobufReader.fixed64): end = try fields.fixed64()
                case (9, ProtobufReader.lengthDelimited):
                    attributes.append(try keyValue(try fields.lengthDelimited(), depth: depth + 1, checkingNested: true))
                case (11, ProtobufReader.lengthDelimited): events.append(try event(try fields.lengthDelimited(), depth: depth + 1))
                case (13, ProtobufReader.lengthDelimited): links.append(try link(try fields.lengthDelimited(), depth: depth + 1))
                case (15, ProtobufReader.lengthDelimited):
                    // `Status`: `string message = 2; StatusCode code = 3`; given twice, merged.
                    let status = try fields.lengthDelimited()
                    try enter(depth + 1, at: status.lowerBound)
                    var statusFields = reader(status)
                    while let tag = try statusFields.nextTag() {
                        switch (tag.number, tag.wireType) {
                        case (2, ProtobufReader.lengthDelimited): statusMessage = try statusFields.string()
                        case (3, ProtobufReader.varint): statusCode = Int(Int32(truncatingIfNeeded: try statusFields.varint()))
                        default: try statusFields.skip(tag, depth: depth + 1)
                        }
                    }
                default: try fields.skip(tag, depth: depth)
                }
            }

            var input = SpanInput()
            input.traceId = hex(traceID)
            input.spanId = hex(spanID)
            input.parentSpanId = parentSpanID.isEmpty ? nil : hex(parentSpanID)
            input.source = source ?? "unknown"
            input.operation = name.isEmpty ? "unknown" : string(name)
            let isError = statusCode == OTLPValues.errorStatus
            if let stage = attributes.last(where: { equals($0.key, "custody.stage") }), case .string(let value) = stage.value {
                input.stage = string(value)
            } else {
                input.stage = isError ? "error" : "span"
            }
            input.timestampNanoseconds = start <= UInt64(Int64.max) ? Int64(start) : Int64.max
            if end >= start, start > 0 {
                input.durationMs = Double(end - start) / 1_000_000
            }

            // `details`, its keys in order: attributes, error, events, kind, links, resource,
            // scope, status, trace_state.
            var out = ByteBuffer()
            out.reserveCapacity(128 + resource.readableBytes + scope.readableBytes + body.count)
            var first = true
            func key(_ name: StaticString) {
                out.writeStaticString(first ? "{\"" : ",\"")
                out.writeStaticString(name)
                out.writeStaticString("\":")
                first = false
            }
            attributes.removeAll { equals($0.key, "custody.stage") }
            if !attributes.isEmpty {
                key("attributes")
                try writeAttributes(attributes, depth: depth + 1, into: &out)
            }
            if isError {
                key("error")
                if statusMessage.isEmpty {
                    out.writeStaticString("\"status ERROR\"")
                } else {
                    JSONValue.writeString(utf8: slice(statusMessage), into: &out)
                }
            }
            if !events.isEmpty {
                key("events")
                out.writeStaticString("[")
                for (index, event) in events.enumerated() {
                    if index > 0 { out.writeStaticString(",") }
                    out.writeStaticString("{\"attributes\":")
                    try writeAttributes(event.attributes, depth: depth + 2, into: &out)
                    out.writeStaticString(",\"name\":")
                    JSONValue.writeString(utf8: slice(event.name), into: &out)
                    out.writeStaticString(",\"time_unix_nano\":\"")
                    out.writeString(String(event.time))
                    out.writeStaticString("\"}")
                }
                out.writeStaticString("]")
            }
            key("kind")
            JSONValue.writeString(OTLPValues.kindName(kind), into: &out)
            if !links.isEmpty {
                key("links")
                out.writeStaticString("[")
                for (index, link) in links.enumerated() {
                    if index > 0 { out.writeStaticString(",") }
                    out.writeStaticString("{\"attributes\":")
                    try writeAttributes(link.attributes, depth: depth + 2, into: &out)
                    out.writeStaticString(",\"span_id\":")
                    OTLPValues.writeHex(slice(link.spanID), into: &out)
                    out.writeStaticString(",\"trace_id\":")
                    OTLPValues.writeHex(slice(link.traceID), into: &out)
                    out.writeStaticString("}")
                }
                out.writeStaticString("]")
            }
            if resource.readableBytes > 0 {
                key("resource")
                out.writeImmutableBuffer(resource)
            }
            if scope.readableBytes > 0 {
                key("scope")
                out.writeImmutableBuffer(scope)
            }
            if statusCode != 0 || !statusMessage.isEmpty {
                key("status")
                out.writeStaticString("{\"code\":")
                JSONValue.writeString(OTLPValues.statusName(statusCode), into: &out)
                out.writeStaticString(",\"message\":")
                JSONValue.writeString(utf8: slice(statusMessage), into: &out)
                out.writeStaticString("}")
            }
            if !traceState.isEmpty {
                key("trace_state")
                JSONValue.writeString(utf8: slice(traceState), into: &out)
            }
            out.writeStaticString("}")
            input.detailsText = JSONText(out)
            return input
        }

        /// `Span.Event`: `fixed64 time_unix_nano = 1; string name = 2; repeated KeyValue
        /// attributes = 3; uint32 dropped_attributes_count = 4`.
        func event(_ body: Range<Int>, depth: Int) throws(OTLPDecodingError) -> Event {
            try enter(depth, at: body.lowerBound)
            var event = Event()
            var fields = reader(body)
            while let tag = try fields.nextTag() {
                switch (tag.number, tag.wireType) {
                case (1, ProtobufReader.fixed64): event.time = try fields.fixed64()
                case (2, ProtobufReader.lengthDelimited): event.name = try fields.string()
                case (3, ProtobufReader.lengthDelimited):
                    event.attributes.append(try keyValue(try fields.lengthDelimited(), depth: depth + 1, checkingNested: true))
                default: try fields.skip(tag, depth: depth)
                }
            }
            return event
        }

        /// `Span.Link`: `bytes trace_id = 1; bytes span_id = 2; string trace_state = 3; repeated
        /// KeyValue attributes = 4; uint32 dropped_attributes_count = 5; fixed32 flags = 6`.
        func link(_ body: Range<Int>, depth: Int) throws(OTLPDecodingError) -> Link {
            try enter(depth, at: body.lowerBound)
            var link = Link()
            var fields = reader(body)
            while let tag = try fields.nextTag() {
                switch (tag.number, tag.wireType) {
                case (1, ProtobufReader.lengthDelimited): link.traceID = try fields.lengthDelimited()
                case (2, ProtobufReader.lengthDelimited): link.spanID = try fields.lengthDelimited()
                case (3, ProtobufReader.lengthDelimited): _ = try fields.string()
                case (4, ProtobufReader.lengthDelimited):
                    link.attributes.append(try keyValue(try fields.lengthDelimited(), depth: depth + 1, checkingNested: true))
                default: try fields.skip(tag, depth: depth)
                }
            }
            return link
        }

        /// `KeyValue`: `string key = 1; AnyValue value = 2` (a value given twice is merged).
        /// `checkingNested`: whether arrays and lists inside the value are checked now (the first
        /// time this body is read) or were already (when the value is being written).
        func keyValue(_ body: Range<Int>, depth: Int, checkingNested: Bool) throws(OTLPDecodingError) -> Attribute {
            try enter(depth, at: body.lowerBound)
            var attribute = Attribute(key: 0..<0, value: .none)
            var fields = reader(body)
            while let tag = try fields.nextTag() {
                switch (tag.number, tag.wireType) {
                case (1, ProtobufReader.lengthDelimited): attribute.key = try fields.string()
                case (2, ProtobufReader.lengthDelimited):
                    try anyValue(try fields.lengthDelimited(), depth: depth + 1, checkingNested: checkingNested, into: &attribute.value)
                default: try fields.skip(tag, depth: depth)
                }
            }
            return attribute
        }

        /// `AnyValue`'s oneof: `string_value = 1; bool_value = 2; int_value = 3; double_value = 4;
        /// ArrayValue array_value = 5; KeyValueList kvlist_value = 6; bytes bytes_value = 7`,
        /// applied to `value` (which holds what earlier bodies of the same value left).
        func anyValue(_ body: Range<Int>, depth: Int, checkingNested: Bool, into value: inout Value) throws(OTLPDecodingError) {
            try enter(depth, at: body.lowerBound)
            var fields = reader(body)
            while let tag = try fields.nextTag() {
                switch (tag.number, tag.wireType) {
                case (1, ProtobufReader.lengthDelimited): value = .string(try fields.string())
                case (2, ProtobufReader.varint): value = .bool(try fields.varint() != 0)
                case (3, ProtobufReader.varint): value = .integer(Int64(bitPattern: try fields.varint()))
                case (4, ProtobufReader.fixed64): value = .double(Double(bitPattern: try fields.fixed64()))
                case (5, ProtobufReader.lengthDelimited):
                    let array = try fields.lengthDelimited()
                    if checkingNested { try checkArray(array, depth: depth + 1) }
                    if case .array(var bodies) = value {
                        value = .none
                        bodies.append(array)
                        value = .array(bodies)
                    } else {
                        value = .array([array])
                    }
                case (6, ProtobufReader.lengthDelimited):
                    let list = try fields.lengthDelimited()
                    if checkingNested { try checkKeyValueList(list, depth: depth + 1) }
                    if case .keyValueList(var bodies) = value {
                        value = .none
                        bodies.append(list)
                        value = .keyValueList(bodies)
                    } else {
                        value = .keyValueList([list])
                    }
                case (7, ProtobufReader.lengthDelimited): value = .bytes(try fields.lengthDelimited())
                default: try fields.skip(tag, depth: depth)
                }
            }
        }

        /// Checks an `ArrayValue` body (`repeated AnyValue values = 1`) and everything in it.
        func checkArray(_ body: Range<Int>, depth: Int) throws(OTLPDecodingError) {
            try enter(depth, at: body.lowerBound)
            var fields = reader(body)
            while let tag = try fields.nextTag() {
                if tag.number == 1, tag.wireType == ProtobufReader.lengthDelimited {
                    var element = Value.none
                    try anyValue(try fields.lengthDelimited(), depth: depth + 1, checkingNested: true, into: &element)
                } else {
                    try fields.skip(tag, depth: depth)
                }
            }
        }

        /// Checks a `KeyValueList` body (`repeated KeyValue values = 1`) and everything in it.
        func checkKeyValueList(_ body: Range<Int>, depth: Int) throws(OTLPDecodingError) {
            try enter(depth, at: body.lowerBound)
            var fields = reader(body)
            while let tag = try fields.nextTag() {
                if tag.number == 1, tag.wireType == ProtobufReader.lengthDelimited {
                    _ = try keyValue(try fields.lengthDelimited(), depth: depth + 1, checkingNested: true)
                } else {
                    try fields.skip(tag, depth: depth)
                }
            }
        }

        /// Attributes as a JSON object, keys in the order of their UTF-8 bytes, a repeated key
        /// keeping its last value (as ``OTLPSpanMapping/writeAttributes(_:into:)``). `depth` is
        /// that of the `KeyValue` messages.
        func writeAttributes(_ attributes: [Attribute], depth: Int, into out: inout ByteBuffer) throws(OTLPDecodingError) {
            // The order, by key then position: an insertion sort in a stack buffer for the few
            // attributes spans have (no allocation), a library sort beyond that.
            let count = attributes.count
            let result: Result<Void, OTLPDecodingError> = withUnsafeTemporaryAllocation(of: Int.self, capacity: count) { order in
                if count <= 32 {
                    for index in 0..<count {
                        var slot = index
                        while slot > 0, compare(attributes[order[slot - 1]].key, attributes[index].key) > 0 {
                            order[slot] = order[slot - 1]
                            slot -= 1
                        }
                        order[slot] = index
                    }
                } else {
                    let sorted = attributes.indices.sorted { a, b in
                        let order = compare(attributes[a].key, attributes[b].key)
                        return order == 0 ? a < b : order < 0
                    }
                    for (position, index) in sorted.enumerated() { order[position] = index }
                }
                return Result { () throws(OTLPDecodingError) in
                    out.writeStaticString("{")
                    var first = true
                    for position in 0..<count {
                        let index = order[position]
                        // Of a run of equal keys, only the last (the latest given) is written.
                        if position + 1 < count, compare(attributes[order[position + 1]].key, attributes[index].key) == 0 { continue }
                        if !first { out.writeStaticString(",") }
                        first = false
                        JSONValue.writeString(utf8: slice(attributes[index].key), into: &out)
                        out.writeStaticString(":")
                        try write(attributes[index].value, depth: depth + 1, into: &out)
                    }
                    out.writeStaticString("}")
                }
            }
            try result.get()
        }

        /// A value as JSON. `depth` is that of the `AnyValue` message.
        func write(_ value: Value, depth: Int, into out: inout ByteBuffer) throws(OTLPDecodingError) {
            switch value {
            case .none: out.writeStaticString("null")
            case .string(let text): JSONValue.writeString(utf8: slice(text), into: &out)
            case .bool(let flag): out.writeStaticString(flag ? "true" : "false")
            case .integer(let number): OTLPValues.writeInteger(number, into: &out)
            case .double(let number): OTLPValues.writeDouble(number, into: &out)
            case .bytes(let data): OTLPValues.writeHex(slice(data), into: &out)
            case .array(let bodies):
                out.writeStaticString("[")
                var first = true
                for body in bodies {
                    var fields = reader(body)
                    while let tag = try fields.nextTag() {
                        if tag.number == 1, tag.wireType == ProtobufReader.lengthDelimited {
                            var element = Value.none
                            try anyValue(try fields.lengthDelimited(), depth: depth + 2, checkingNested: false, into: &element)
                            if !first { out.writeStaticString(",") }
                            first = false
                            try write(element, depth: depth + 2, into: &out)
                        } else {
                            try fields.skip(tag, depth: depth + 1)
                        }
                    }
                }
                out.writeStaticString("]")
            case .keyValueList(let bodies):
                var attributes: [Attribute] = []
                for body in bodies {
                    var fields = reader(body)
                    while let tag = try fields.nextTag() {
                        if tag.number == 1, tag.wireType == ProtobufReader.lengthDelimited {
                            attributes.append(try keyValue(try fields.lengthDelimited(), depth: depth + 2, checkingNested: false))
                        } else {
                            try fields.skip(tag, depth: depth + 1)
                        }
                    }
                }
                try writeAttributes(attributes, depth: depth + 2, into: &out)
            }
        }

        /// The order of two byte ranges, as `memcmp` and then length give it.
        func compare(_ a: Range<Int>, _ b: Range<Int>) -> Int {
            let common = min(a.count, b.count)
            if common > 0 {
                let order = memcmp(bytes.baseAddress! + a.lowerBound, bytes.baseAddress! + b.lowerBound, common)
                if order != 0 { return Int(order) }
            }
            return a.count - b.count
        }

        /// Whether the bytes at `range` are `text`'s UTF-8.
        func equals(_ range: Range<Int>, _ text: StaticString) -> Bool {
            guard range.count == text.utf8CodeUnitCount else { return false }
            return memcmp(bytes.baseAddress! + range.lowerBound, text.utf8Start, range.count) == 0
        }
    }
}
