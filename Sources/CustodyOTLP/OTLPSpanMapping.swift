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
            let source = resourceAttributes.last { isKey($0, "service.name") }.flatMap { attribute -> String? in
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
        if let stage = span.attributes.last(where: { isKey($0, "custody.stage") }), case .stringValue(let value)? = stage.value.value {
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
        let attributes = span.attributes.filter { !isKey($0, "custody.stage") }
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

    /// Attributes as a JSON object, keys in the order of their UTF-8 bytes; a repeated key keeps
    /// its last value. (Bytes, not `String`'s order and equality, which would take two distinct
    /// keys that are canonically equivalent for one.) A sort, not a search per key, so that an
    /// export of many attributes costs n log n.
    static func writeAttributes(_ list: [Opentelemetry_Proto_Common_V1_KeyValue], into out: inout ByteBuffer) {
        let order = list.indices.sorted { a, b in
            let left = list[a].key.utf8
            let right = list[b].key.utf8
            if left.elementsEqual(right) { return a < b }
            return left.lexicographicallyPrecedes(right)
        }
        out.writeStaticString("{")
        var first = true
        for (position, index) in order.enumerated() {
            // Of a run of equal keys, only the last (the latest in the list) is written.
            if position + 1 < order.count, list[order[position + 1]].key.utf8.elementsEqual(list[index].key.utf8) { continue }
            if !first { out.writeStaticString(",") }
            first = false
            JSONValue.writeString(list[index].key, into: &out)
            out.writeStaticString(":")
            writeValue(list[index].value, into: &out)
        }
        out.writeStaticString("}")
    }

    static func writeValue(_ any: Opentelemetry_Proto_Common_V1_AnyValue, into out: inout ByteBuffer) {
        switch any.value {
        case .stringValue(let text)?: JSONValue.writeString(text, into: &out)
        case .boolValue(let flag)?: out.writeStaticString(flag ? "true" : "false")
        case .intValue(let number)?: OTLPValues.writeInteger(number, into: &out)
        case .doubleValue(let number)?: OTLPValues.writeDouble(number, into: &out)
        case .arrayValue(let array)?:
            out.writeStaticString("[")
            for (index, element) in array.values.enumerated() {
                if index > 0 { out.writeStaticString(",") }
                writeValue(element, into: &out)
            }
            out.writeStaticString("]")
        case .kvlistValue(let list)?: writeAttributes(list.values, into: &out)
        case .bytesValue(let bytes)?: OTLPValues.writeHex(bytes, into: &out)
        case nil: out.writeStaticString("null")
        }
    }

    /// Whether an attribute's key is `name`, byte for byte.
    static func isKey(_ attribute: Opentelemetry_Proto_Common_V1_KeyValue, _ name: String) -> Bool {
        attribute.key.utf8.elementsEqual(name.utf8)
    }

    /// Lower-case hex of an id.
    static func hex(_ bytes: Data) -> String { Hex.encode(bytes) }

    static func kindName(_ kind: Opentelemetry_Proto_Trace_V1_Span.SpanKind) -> String { OTLPValues.kindName(kind.rawValue) }

    static func statusName(_ code: Opentelemetry_Proto_Trace_V1_Status.StatusCode) -> String { OTLPValues.statusName(code.rawValue) }
}
