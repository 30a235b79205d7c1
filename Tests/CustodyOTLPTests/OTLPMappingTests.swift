import CustodyCore
import CustodyLog
import CustodyLogTesting
import CustodyOTLP
import Foundation
import SwiftProtobuf
import Testing

/// OTLP export requests, built by hand, through the protobuf encoding and the mapping to spans.
@Suite struct OTLPMappingTests {
    typealias KeyValue = Opentelemetry_Proto_Common_V1_KeyValue

    func attribute(_ key: String, _ value: String) -> KeyValue {
        var pair = KeyValue()
        pair.key = key
        pair.value.stringValue = value
        return pair
    }

    func request() -> OTLPSpanMapping.Request {
        var parent = Opentelemetry_Proto_Trace_V1_Span()
        parent.traceID = Data((0..<16).map { UInt8($0 * 17) })
        parent.spanID = Data([0xAB, 0xCD, 0, 1, 2, 3, 4, 5])
        parent.name = "GET /orders"
        parent.kind = .server
        parent.startTimeUnixNano = 1_764_000_000_000_000_000
        parent.endTimeUnixNano = 1_764_000_000_012_500_000
        var count = KeyValue()
        count.key = "http.status_code"
        count.value.intValue = 200
        parent.attributes = [attribute("http.method", "GET"), count]
        var event = Opentelemetry_Proto_Trace_V1_Span.Event()
        event.name = "cache miss"
        event.timeUnixNano = 1_764_000_000_001_000_000
        parent.events = [event]

        var child = Opentelemetry_Proto_Trace_V1_Span()
        child.traceID = parent.traceID
        child.spanID = Data([9, 9, 9, 9, 9, 9, 9, 9])
        child.parentSpanID = parent.spanID
        child.name = "SELECT orders"
        child.startTimeUnixNano = 1_764_000_000_002_000_000
        child.endTimeUnixNano = 1_764_000_000_007_000_000
        child.status.code = .error
        child.status.message = "timeout"
        child.attributes = [attribute("custody.stage", "outbound_call")]

        var plain = child
        plain.spanID = Data([1, 1, 1, 1, 1, 1, 1, 1])
        plain.attributes = []

        var resourceSpans = Opentelemetry_Proto_Trace_V1_ResourceSpans()
        resourceSpans.resource.attributes = [attribute("service.name", "agent-factory"), attribute("host.name", "h1")]
        var scopeSpans = Opentelemetry_Proto_Trace_V1_ScopeSpans()
        scopeSpans.scope.name = "tracer"
        scopeSpans.spans = [parent, child, plain]
        resourceSpans.scopeSpans = [scopeSpans]
        var request = OTLPSpanMapping.Request()
        request.resourceSpans = [resourceSpans]
        return request
    }

    @Test func spansMapAsAPIMDSays() throws {
        let bytes = try request().serializedBytes() as [UInt8]
        let decoded = try OTLPSpanMapping.Request(serializedBytes: bytes)
        let spans = try OTLPSpanMapping.spans(of: decoded).map { try $0.validated(now: 0, newTraceId: { "new" }) }
        #expect(spans.count == 3)
        let parent = spans[0]
        #expect(parent.traceId == "00112233445566778899aabbccddeeff")
        #expect(parent.spanId == "abcd000102030405")
        #expect(parent.parentSpanId == nil)
        #expect(parent.source == "agent-factory" && parent.operation == "GET /orders" && parent.stage == "span")
        #expect(parent.timestamp == 1_764_000_000_000_000_000 && parent.durationMs == 12.5)
        let details = try #require(parent.details?.jsonValue.objectValue)
        #expect(details["kind"] == .string("SPAN_KIND_SERVER"))
        #expect(details["attributes"] == .object(["http.method": .string("GET"), "http.status_code": .integer(200)]))
        #expect((details["events"]?.jsonText.description ?? "").contains("cache miss"))
        #expect(details["resource"]?.objectValue?["host.name"] == .string("h1"))
        // custody.stage sets the stage; an ERROR status makes it an error span.
        #expect(spans[1].stage == "outbound_call" && spans[1].parentSpanId == "abcd000102030405")
        #expect(spans[1].details?.hasTopLevelKey("error") == true)
        #expect(spans[2].stage == "error")
    }

    @Test func malformedProtobufIsRefusedNeverATrap() throws {
        let good = try request().serializedBytes() as [UInt8]
        var random = SplitMix64(seed: 5)
        var refused = 0
        for round in 0..<3000 {
            var bytes = good
            switch round % 3 {
            case 0: bytes = Array(bytes.prefix(Int(random.next() % UInt64(bytes.count))))
            case 1: bytes[Int(random.next() % UInt64(bytes.count))] ^= UInt8(truncatingIfNeeded: random.next() | 1)
            default: bytes = (0..<Int(random.next() % 200)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            }
            if let request = try? OTLPSpanMapping.Request(serializedBytes: bytes) {
                for span in OTLPSpanMapping.spans(of: request) { _ = try? span.validated(now: 0, newTraceId: { "t" }) }
            } else {
                refused += 1
            }
        }
        #expect(refused > 500)
    }
}
