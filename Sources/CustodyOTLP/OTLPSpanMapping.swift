import CustodyCore
import NIOCore
import SwiftProtobuf

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// OTLP spans as Custody spans (docs/api.md "OTLP/HTTP"): `source` is the resource's
/// `service.name`; `operation` the span's name; `stage` the attribute `custody.stage` when
/// present, else `error` when the status is ERROR, else `span`; `timestamp` the start;
/// `duration_ms` end − start; ids as lower-case hex. Attributes, events, links, status, kind,
/// the scope and the resource's attributes go into `details`. The result still goes through the
/// same validation as any span.
public enum OTLPSpanMapping {
    public typealias Request = Opentelemetry_Proto_Collector_Trace_V1_ExportTraceServiceRequest

    /// Every span of an export request, in order.
    public static func spans(of request: Request) -> [SpanInput] {
        var spans: [SpanInput] = []
        for resourceSpans in request.resourceSpans {
            let resourceAttributes = resourceSpans.resource.attributes
            let source = resourceAttributes.last { $0.key == "service.name" }.flatMap { attribute -> String? in
                if case .stringValue(let name)? = attribute.value.value, !name.isEmpty { return name }
                return nil
            }
            // Written once per resource and per scope, copied into each span's details.
            var resource = ByteBuffer()
            if !resourceAttributes.isEmpty { writeAttributes(resourceAttributes, into: &resource) }
            for scopeSpans in resourceSpans.scopeSpans {
                var scope = ByteBuffer()
                if !scopeSpans.scope.name.isEmpty || !scopeSpans.scope.version.isEmpty {
                    var fields: [String: JSONValue] = [:]
                    if !scopeSpans.scope.name.isEmpty { fields["name"] = .string(scopeSpans.scope.name) }
                    if !scopeSpans.scope.version.isEmpty { fields["version"] = .string(scopeSpans.scope.version) }
                    JSONValue.object(fields).write(into: &scope)
                }
                for span in scopeSpans.spans {
                    spans.append(map(span, source: source, resource: resource, scope: scope))
                }
            }
        }
        return spans
    }

    static func map(_ span: Opentelemetry_Proto_Trace_V1_Span, source: String?, resource: ByteBuffer, scope: ByteBuffer) -> SpanInput {
        var input = SpanInput()
        input.traceId = hex(span.traceID)
        input.spanId = hex(span.spanID)
        input.parentSpanId = span.parentSpanID.isEmpty ? nil : hex(span.parentSpanID)
        input.source = source ?? "unknown"
        input.operation = span.name.isEmpty ? "unknown" : span.name
        let isError = span.status.code == .error
        if let stage = span.attributes.last(where: { $0.key == "custody.stage" }), case .stringValue(let value)? = stage.value.value {
            input.stage = value
        } else {
            input.stage = isError ? "error" : "span"
        }
        // Nanoseconds since 1970 as OTLP sends them (unsigned); beyond Int64 they are refused by
        // validation as a timestamp out of range.
        input.timestampNanoseconds = span.startTimeUnixNano <= UInt64(Int64.max) ? Int64(span.startTimeUnixNano) : Int64.max
        if span.endTimeUnixNano >= span.startTimeUnixNano, span.startTimeUnixNano > 0 {
            input.durationMs = Double(span.endTimeUnixNano - span.startTimeUnixNano) / 1_000_000
        }
        input.detailsText = JSONText(details(of: span, isError: isError, resource: resource, scope: scope))
        return input
    }

    /// `details`, written straight into a buffer with its keys in order (no dictionaries on the
    /// hot path): attributes, error, events, kind, links, resource, scope, status, trace_state.
    static func details(of span: Opentelemetry_Proto_Trace_V1_Span, isError: Bool, resource: ByteBuffer, scope: ByteBuffer) -> ByteBuffer {
        var out = ByteBuffer()
        out.reserveCapacity(128 + resource.readableBytes + scope.readableBytes)
        var first = true
        func key(_ name: StaticString) {
            out.writeStaticString(first ? "{\"" : ",\"")
            out.writeStaticString(name)
            out.writeStaticString("\":")
            first = false
        }
        let attributes = span.attributes.filter { $0.key != "custody.stage" }
        if !attributes.isEmpty {
            key("attributes")
            writeAttributes(attributes, into: &out)
        }
        if isError {
            key("error")
            JSONValue.writeString(span.status.message.isEmpty ? "status ERROR" : span.status.message, into: &out)
        }
        if !span.events.isEmpty {
            key("events")
            out.writeStaticString("[")
            for (index, event) in span.events.enumerated() {
                if index > 0 { out.writeStaticString(",") }
                out.writeStaticString("{\"attributes\":")
                writeAttributes(event.attributes, into: &out)
                out.writeStaticString(",\"name\":")
                JSONValue.writeString(event.name, into: &out)
                out.writeStaticString(",\"time_unix_nano\":\"")
                out.writeString(String(event.timeUnixNano))
                out.writeStaticString("\"}")
            }
            out.writeStaticString("]")
        }
        key("kind")
        JSONValue.writeString(kindName(span.kind), into: &out)
        if !span.links.isEmpty {
            key("links")
            out.writeStaticString("[")
            for (index, link) in span.links.enumerated() {
                if index > 0 { out.writeStaticString(",") }
                out.writeStaticString("{\"attributes\":")
                writeAttributes(link.attributes, into: &out)
                out.writeStaticString(",\"span_id\":")
                JSONValue.writeString(hex(link.spanID), into: &out)
                out.writeStaticString(",\"trace_id\":")
                JSONValue.writeString(hex(link.traceID), into: &out)
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
        if span.hasStatus, span.status.code != .unset || !span.status.message.isEmpty {
            key("status")
            out.writeStaticString("{\"code\":")
            JSONValue.writeString(statusName(span.status.code), into: &out)
            out.writeStaticString(",\"message\":")
            JSONValue.writeString(span.status.message, into: &out)
            out.writeStaticString("}")
        }
        if !span.traceState.isEmpty {
            key("trace_state")
            JSONValue.writeString(span.traceState, into: &out)
        }
        out.writeStaticString("}")
        return out
    }

    /// Attributes as a JSON object, keys sorted; a repeated key keeps its last value.
    static func writeAttributes(_ list: [Opentelemetry_Proto_Common_V1_KeyValue], into out: inout ByteBuffer) {
        var unique: [Opentelemetry_Proto_Common_V1_KeyValue] = []
        unique.reserveCapacity(list.count)
        for attribute in list.reversed() where !unique.contains(where: { $0.key == attribute.key }) { unique.append(attribute) }
        unique.sort { $0.key < $1.key }
        out.writeStaticString("{")
        for (index, attribute) in unique.enumerated() {
            if index > 0 { out.writeStaticString(",") }
            JSONValue.writeString(attribute.key, into: &out)
            out.writeStaticString(":")
            value(attribute.value).write(into: &out)
        }
        out.writeStaticString("}")
    }

    static func attributes(_ list: [Opentelemetry_Proto_Common_V1_KeyValue]) -> [String: JSONValue] {
        var object: [String: JSONValue] = [:]
        for attribute in list { object[attribute.key] = value(attribute.value) }
        return object
    }

    static func value(_ any: Opentelemetry_Proto_Common_V1_AnyValue) -> JSONValue {
        switch any.value {
        case .stringValue(let text)?: .string(text)
        case .boolValue(let flag)?: .bool(flag)
        case .intValue(let number)?: .integer(number)
        case .doubleValue(let number)?: number.isFinite ? .number(number) : .string(String(number))
        case .arrayValue(let array)?: .array(array.values.map(value))
        case .kvlistValue(let list)?: .object(attributes(list.values))
        case .bytesValue(let bytes)?: .string(hex(bytes))
        case nil: .null
        }
    }

    /// Lower-case hex of an id.
    static func hex(_ bytes: Data) -> String { Hex.encode(bytes) }

    static func kindName(_ kind: Opentelemetry_Proto_Trace_V1_Span.SpanKind) -> String {
        switch kind {
        case .unspecified: "SPAN_KIND_UNSPECIFIED"
        case .internal: "SPAN_KIND_INTERNAL"
        case .server: "SPAN_KIND_SERVER"
        case .client: "SPAN_KIND_CLIENT"
        case .producer: "SPAN_KIND_PRODUCER"
        case .consumer: "SPAN_KIND_CONSUMER"
        case .UNRECOGNIZED(let value): "SPAN_KIND_\(value)"
        }
    }

    static func statusName(_ code: Opentelemetry_Proto_Trace_V1_Status.StatusCode) -> String {
        switch code {
        case .unset: "STATUS_CODE_UNSET"
        case .ok: "STATUS_CODE_OK"
        case .error: "STATUS_CODE_ERROR"
        case .UNRECOGNIZED(let value): "STATUS_CODE_\(value)"
        }
    }
}
