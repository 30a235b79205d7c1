import NIOCore
import SwiftProtobuf

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Sample OTLP exports, for benchmarks (docs/benchmarks.md P4, P12).
public enum OTLPSamples {
    /// An OTLP export request of `batch` spans as an SDK writes one (unique ids per body, eight
    /// spans per trace, a name, a kind, start and end, two attributes), protobuf-encoded: what
    /// `custody bench ingest --otlp` sends and the decoding benchmark decodes.
    public static func export(body: Int, batch: Int, random: inout some RandomNumberGenerator) -> ByteBuffer {
        var resourceSpans = Opentelemetry_Proto_Trace_V1_ResourceSpans()
        var service = Opentelemetry_Proto_Common_V1_KeyValue()
        service.key = "service.name"
        service.value.stringValue = ["agent-factory", "data-factory", "ui-factory"][body % 3]
        resourceSpans.resource.attributes = [service]
        var scope = Opentelemetry_Proto_Trace_V1_ScopeSpans()
        scope.scope.name = "bench"
        var traceID = Data(count: 16)
        for i in 0..<batch {
            if i % 8 == 0 { traceID = Data((0..<16).map { _ in UInt8(truncatingIfNeeded: random.next()) }) }
            var span = Opentelemetry_Proto_Trace_V1_Span()
            span.traceID = traceID
            span.spanID = Data((0..<8).map { _ in UInt8(truncatingIfNeeded: random.next()) })
            span.name = ["createAgent", "loadRows", "render", "deploy"][i % 4]
            span.kind = .server
            span.startTimeUnixNano = 1_764_000_000_000_000_000 + UInt64(body * batch + i) * 1000
            span.endTimeUnixNano = span.startTimeUnixNano + UInt64(random.next() % 50_000_000)
            var order = Opentelemetry_Proto_Common_V1_KeyValue()
            order.key = "order.id"
            order.value.stringValue = "o-\(body)"
            var attempt = Opentelemetry_Proto_Common_V1_KeyValue()
            attempt.key = "attempt"
            attempt.value.intValue = Int64(i % 3)
            span.attributes = [order, attempt]
            scope.spans.append(span)
        }
        resourceSpans.scopeSpans = [scope]
        var request = OTLPSpanMapping.Request()
        request.resourceSpans = [resourceSpans]
        let bytes: [UInt8] = (try? request.serializedBytes()) ?? []
        return ByteBuffer(bytes: bytes)
    }
}
