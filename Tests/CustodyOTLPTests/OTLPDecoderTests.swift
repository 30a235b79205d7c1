import CustodyCore
import CustodyLog
import CustodyLogTesting
import CustodyOTLP
import Foundation
import NIOCore
import SwiftProtobuf
import Testing

/// The fast OTLP decoder against the reference (SwiftProtobuf's decoding, then
/// ``OTLPSpanMapping``): for random messages written at the wire level — repeated singular
/// messages, oneofs set twice, unexpected wire types, unknown fields and groups, non-ASCII and
/// invalid UTF-8, deep nesting — and for mutations of them, both give the same spans, `details`
/// byte for byte, or both refuse.
@Suite struct OTLPDecoderTests {
    /// What the reference makes of bytes: the spans, or nil when SwiftProtobuf refuses them.
    static func reference(_ bytes: [UInt8]) -> [SpanInput]? {
        guard let request = try? OTLPSpanMapping.Request(serializedBytes: bytes) else { return nil }
        return OTLPSpanMapping.spans(of: request)
    }

    static func fast(_ bytes: [UInt8]) -> [SpanInput]? {
        try? bytes.withUnsafeBytes { try OTLPProtobufDecoder.spans(from: $0) }
    }

    /// Fails with the bytes (hex) when the two disagree.
    static func expectSame(_ bytes: [UInt8], _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let expected = reference(bytes)
        let actual = fast(bytes)
        guard expected != actual else { return }
        let detail: String
        if let expected, let actual, expected.count == actual.count {
            let index = expected.indices.first { expected[$0] != actual[$0] } ?? 0
            detail = "span \(index): reference \(expected[index]) / fast \(actual[index])"
        } else {
            detail = "reference \(expected.map { "\($0.count) spans" } ?? "refused") / fast \(actual.map { "\($0.count) spans" } ?? "refused")"
        }
        Issue.record("\(what): \(detail); bytes \(Hex.encode(bytes))", sourceLocation: sourceLocation)
    }

    @Test func aHandWrittenExportDecodesAsTheReferenceDoes() throws {
        var span = Opentelemetry_Proto_Trace_V1_Span()
        span.traceID = Data((0..<16).map { UInt8($0) })
        span.spanID = Data([1, 2, 3, 4, 5, 6, 7, 8])
        span.name = "createAgent"
        span.startTimeUnixNano = 1_764_000_000_000_000_000
        span.endTimeUnixNano = 1_764_000_000_002_500_000
        var attribute = Opentelemetry_Proto_Common_V1_KeyValue()
        attribute.key = "é"
        attribute.value.arrayValue.values = [.init(), .init()]
        attribute.value.arrayValue.values[0].doubleValue = .infinity
        attribute.value.arrayValue.values[1].kvlistValue.values = [attribute]
        span.attributes = [attribute, attribute]
        span.status.code = .error
        var request = OTLPSpanMapping.Request()
        request.resourceSpans = [.init()]
        request.resourceSpans[0].scopeSpans = [.init()]
        request.resourceSpans[0].scopeSpans[0].spans = [span, span]
        let bytes: [UInt8] = try request.serializedBytes()
        let spans = try #require(Self.fast(bytes))
        #expect(spans.count == 2)
        #expect(spans[0].traceId == "000102030405060708090a0b0c0d0e0f" && spans[0].stage == "error" && spans[0].durationMs == 2.5)
        #expect(spans[0].detailsText?.description.contains("\"attributes\":{\"é\":[\"inf\",{\"é\":[\"inf\",null]}]}") == true)
        Self.expectSame(bytes, "hand-written")
    }

    @Test func randomMessagesDecodeIdentically() {
        var random = SplitMix64(seed: 17)
        var decoded = 0
        for round in 0..<3000 {
            var writer = WireWriter(random: random)
            let bytes = writer.message(.request, depth: 1)
            random = writer.random
            if Self.reference(bytes) != nil { decoded += 1 }
            Self.expectSame(bytes, "random message \(round)")
        }
        // Most of them are valid (the generator makes invalid UTF-8 or depth rarely).
        #expect(decoded > 2000)
    }

    @Test func mutatedMessagesDecodeOrAreRefusedIdentically() {
        var random = SplitMix64(seed: 99)
        var refused = 0
        for round in 0..<3000 {
            var writer = WireWriter(random: random)
            var bytes = writer.message(.request, depth: 1)
            random = writer.random
            guard !bytes.isEmpty else { continue }
            for _ in 0...Int(random.next() % 3) {
                let at = Int(random.next() % UInt64(bytes.count))
                switch random.next() % 5 {
                case 0: bytes[at] ^= UInt8(1 << (random.next() % 8))
                case 1: bytes.removeSubrange(at..<min(bytes.count, at + 1 + Int(random.next() % 4)))
                case 2: bytes.insert(UInt8(truncatingIfNeeded: random.next()), at: at)
                case 3: bytes = Array(bytes[..<at])
                default: bytes[at] = [0x00, 0x7F, 0x80, 0xFF, 0x0A, 0x12][Int(random.next() % 6)]
                }
                if bytes.isEmpty { break }
            }
            if Self.reference(bytes) == nil { refused += 1 }
            Self.expectSame(bytes, "mutated message \(round)")
        }
        #expect(refused > 300)
    }

    @Test func nestingAtTheDepthLimitIsTakenAndBeyondItRefused() {
        for arrays in [44, 45, 46, 47, 48] {
            // Request 1, ResourceSpans 2, ScopeSpans 3, Span 4, KeyValue 5, AnyValue 6, then
            // ArrayValue and AnyValue in turn.
            var value = WireWriter.field(1, string: "leaf")
            for _ in 0..<arrays { value = WireWriter.field(5, message: WireWriter.field(1, message: value)) }
            let keyValue = WireWriter.field(1, string: "k") + WireWriter.field(2, message: value)
            let span = WireWriter.field(9, message: keyValue)
            let bytes = WireWriter.field(1, message: WireWriter.field(2, message: WireWriter.field(2, message: span)))
            Self.expectSame(bytes, "\(arrays) arrays deep")
        }
        #expect(Self.reference(Self.deepGroup(96)) != nil && Self.reference(Self.deepGroup(100)) == nil)
        Self.expectSame(Self.deepGroup(96), "groups")
        Self.expectSame(Self.deepGroup(100), "groups")
    }

    /// An unknown field of the request holding `depth` nested groups.
    static func deepGroup(_ depth: Int) -> [UInt8] {
        var bytes: [UInt8] = []
        for _ in 0..<depth { bytes += WireWriter.tag(7, 3) }
        for _ in 0..<depth { bytes += WireWriter.tag(7, 4) }
        return bytes
    }

    @Test func manyAttributesWithRepeatedKeysKeepTheLastOfEach() throws {
        // 20,000 attributes on one span, 15,000 distinct keys (sorted once, not searched per key).
        var span: [UInt8] = []
        for index in 0..<20_000 {
            span += WireWriter.field(
                9,
                message: WireWriter.field(1, string: "k\(index % 15_000)") + WireWriter.field(2, message: WireWriter.field(3, varint: UInt64(index)))
            )
        }
        let bytes = WireWriter.field(1, message: WireWriter.field(2, message: WireWriter.field(2, message: span)))
        let spans = try #require(Self.fast(bytes))
        #expect(spans.count == 1 && spans[0].detailsText?.description.contains("\"k0\":15000,") == true)
        Self.expectSame(bytes, "20,000 attributes")
    }
}

/// Writes random protobuf at the wire level, following the OTLP trace schema with deviations.
struct WireWriter {
    var random: SplitMix64

    enum Kind {
        case request, resourceSpans, resource, scopeSpans, scope, span, event, link, status, keyValue, anyValue, arrayValue, keyValueList
    }

    enum FieldType {
        case message(Kind)
        case string, bytes, varint, fixed64, fixed32
    }

    static func fields(of kind: Kind) -> [(Int, FieldType)] {
        switch kind {
        case .request: [(1, .message(.resourceSpans))]
        case .resourceSpans: [(1, .message(.resource)), (2, .message(.scopeSpans)), (3, .string)]
        case .resource: [(1, .message(.keyValue)), (2, .varint)]
        case .scopeSpans: [(1, .message(.scope)), (2, .message(.span)), (3, .string)]
        case .scope: [(1, .string), (2, .string), (3, .message(.keyValue)), (4, .varint)]
        case .span:
            [
                (1, .bytes), (2, .bytes), (3, .string), (4, .bytes), (5, .string), (6, .varint), (7, .fixed64), (8, .fixed64),
                (9, .message(.keyValue)), (10, .varint), (11, .message(.event)), (12, .varint), (13, .message(.link)), (14, .varint),
                (15, .message(.status)), (16, .fixed32),
            ]
        case .event: [(1, .fixed64), (2, .string), (3, .message(.keyValue)), (4, .varint)]
        case .link: [(1, .bytes), (2, .bytes), (3, .string), (4, .message(.keyValue)), (5, .varint), (6, .fixed32)]
        case .status: [(2, .string), (3, .varint)]
        case .keyValue: [(1, .string), (2, .message(.anyValue))]
        case .anyValue:
            [(1, .string), (2, .varint), (3, .varint), (4, .fixed64), (5, .message(.arrayValue)), (6, .message(.keyValueList)), (7, .bytes)]
        case .arrayValue: [(1, .message(.anyValue))]
        case .keyValueList: [(1, .message(.keyValue))]
        }
    }

    mutating func chance(_ percent: UInt64) -> Bool { random.next() % 100 < percent }

    mutating func message(_ kind: Kind, depth: Int) -> [UInt8] {
        let schema = Self.fields(of: kind)
        var bytes: [UInt8] = []
        let count: Int
        switch kind {
        case .request, .resourceSpans, .scopeSpans: count = 1 + Int(random.next() % 3)
        case .span: count = depth > 12 ? 2 : 4 + Int(random.next() % 10)
        case .arrayValue, .keyValueList: count = depth > 14 ? 0 : Int(random.next() % 4)
        default: count = 1 + Int(random.next() % 3)
        }
        // Spans get the fields that matter most of the time: ids, name, times, attributes.
        if kind == .span {
            bytes += Self.field(1, bytes: randomBytes(16))
            bytes += Self.field(2, bytes: randomBytes(8))
            if chance(70) { bytes += Self.field(5, string: text()) }
            bytes += Self.tag(7, 1) + Self.little(1_764_000_000_000_000_000 + random.next() % 1_000_000)
            bytes += Self.tag(8, 1) + Self.little(1_764_000_000_000_000_000 + random.next() % 2_000_000)
        }
        for _ in 0..<count {
            if chance(6) {
                bytes += unknownField(depth: depth)
                continue
            }
            let (number, type) = schema[Int(random.next() % UInt64(schema.count))]
            if chance(4) {
                bytes += wrongWireType(number)
                continue
            }
            switch type {
            case .message(let inner):
                // Deep nesting is rare but reaches the limit now and then.
                let body = depth < 99 && (depth < 16 || chance(60)) ? message(inner, depth: depth + 1) : []
                bytes += Self.field(number, message: body)
            case .string:
                bytes += Self.field(number, bytes: chance(2) ? [0xC3, 0x28] : Array(text().utf8))
            case .bytes: bytes += Self.field(number, bytes: randomBytes(Int(random.next() % 17)))
            case .varint: bytes += Self.tag(number, 0) + Self.varint(interestingNumber())
            case .fixed64: bytes += Self.tag(number, 1) + Self.little(interestingNumber())
            case .fixed32: bytes += Self.tag(number, 5) + [1, 2, 3, 4]
            }
        }
        return bytes
    }

    mutating func interestingNumber() -> UInt64 {
        switch random.next() % 6 {
        case 0: 0
        case 1: 2
        case 2: UInt64(bitPattern: -1)
        case 3: random.next()
        case 4: 0x1_0000_0002
        default: random.next() % 300
        }
    }

    mutating func text() -> String {
        let words = ["service.name", "custody.stage", "é", "e\u{301}", "k", "a\"b\\c\n", "\u{1F600}", "", "outbound_call", "Ω", "\u{0}", "z"]
        return words[Int(random.next() % UInt64(words.count))] + (chance(30) ? String(random.next() % 10) : "")
    }

    mutating func randomBytes(_ count: Int) -> [UInt8] { (0..<count).map { _ in UInt8(truncatingIfNeeded: random.next()) } }

    mutating func unknownField(depth: Int) -> [UInt8] {
        let number = 17 + Int(random.next() % 2000)
        switch random.next() % 5 {
        case 0: return Self.tag(number, 0) + Self.varint(random.next())
        case 1: return Self.tag(number, 1) + Self.little(random.next())
        case 2: return Self.field(number, bytes: randomBytes(Int(random.next() % 9)))
        case 3: return Self.tag(number, 5) + [9, 9, 9, 9]
        default:
            // A group, with a field inside.
            return Self.tag(number, 3) + Self.tag(1, 0) + Self.varint(5) + Self.tag(number, 4)
        }
    }

    mutating func wrongWireType(_ number: Int) -> [UInt8] {
        switch random.next() % 4 {
        case 0: Self.tag(number, 0) + Self.varint(random.next() % 1000)
        case 1: Self.tag(number, 1) + Self.little(random.next())
        case 2: Self.field(number, bytes: randomBytes(3))
        default: Self.tag(number, 5) + [0, 0, 0, 0]
        }
    }

    static func tag(_ number: Int, _ wireType: UInt8) -> [UInt8] { varint(UInt64(number) << 3 | UInt64(wireType)) }

    static func varint(_ value: UInt64) -> [UInt8] {
        var value = value
        var bytes: [UInt8] = []
        while value >= 0x80 {
            bytes.append(UInt8(value & 0x7F) | 0x80)
            value >>= 7
        }
        bytes.append(UInt8(value))
        return bytes
    }

    static func little(_ value: UInt64) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: value >> ($0 * 8)) } }

    static func field(_ number: Int, bytes: [UInt8]) -> [UInt8] { tag(number, 2) + varint(UInt64(bytes.count)) + bytes }
    static func field(_ number: Int, message: [UInt8]) -> [UInt8] { field(number, bytes: message) }
    static func field(_ number: Int, string: String) -> [UInt8] { field(number, bytes: Array(string.utf8)) }
    static func field(_ number: Int, varint value: UInt64) -> [UInt8] { tag(number, 0) + varint(value) }
}
