import CustodyCore
import SwiftProtobuf

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// OTLP spans as Custody spans (API.md "OTLP/HTTP"): `source` is the resource's
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
            let source = resourceAttributes.first { $0.key == "service.name" }.flatMap { attribute -> String? in
                if case .stringValue(let name)? = attribute.value.value, !name.isEmpty { return name }
                return nil
            }
            let resource = attributes(resourceAttributes)
            for scopeSpans in resourceSpans.scopeSpans {
                var scope: [String: JSONValue] = [:]
                if !scopeSpans.scope.name.isEmpty { scope["name"] = .string(scopeSpans.scope.name) }
                if !scopeSpans.scope.version.isEmpty { scope["version"] = .string(scopeSpans.scope.version) }
                for span in scopeSpans.spans {
                    spans.append(map(span, source: source, resource: resource, scope: scope))
                }
            }
        }
        return spans
    }

    static func map(
        _ span: Opentelemetry_Proto_Trace_V1_Span,
        source: String?,
        resource: [String: JSONValue],
        scope: [String: JSONValue]
    ) -> SpanInput {
        var input = SpanInput()
        input.traceId = hex(span.traceID)
        input.spanId = hex(span.spanID)
        input.parentSpanId = span.parentSpanID.isEmpty ? nil : hex(span.parentSpanID)
        input.source = source ?? "unknown"
        input.operation = span.name.isEmpty ? "unknown" : span.name
        let isError = span.status.code == .error
        if let stage = span.attributes.first(where: { $0.key == "custody.stage" }), case .stringValue(let value)? = stage.value.value {
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
        var details: [String: JSONValue] = ["kind": .string(kindName(span.kind))]
        let spanAttributes = attributes(span.attributes.filter { $0.key != "custody.stage" })
        if !spanAttributes.isEmpty { details["attributes"] = .object(spanAttributes) }
        if !span.events.isEmpty {
            details["events"] = .array(
                span.events.map { event in
                    .object([
                        "name": .string(event.name), "time_unix_nano": .string(String(event.timeUnixNano)),
                        "attributes": .object(attributes(event.attributes)),
                    ])
                }
            )
        }
        if !span.links.isEmpty {
            details["links"] = .array(
                span.links.map { link in
                    .object([
                        "trace_id": .string(hex(link.traceID)), "span_id": .string(hex(link.spanID)),
                        "attributes": .object(attributes(link.attributes)),
                    ])
                }
            )
        }
        if span.hasStatus, span.status.code != .unset || !span.status.message.isEmpty {
            details["status"] = .object(["code": .string(statusName(span.status.code)), "message": .string(span.status.message)])
        }
        if isError { details["error"] = .string(span.status.message.isEmpty ? "status ERROR" : span.status.message) }
        if !resource.isEmpty { details["resource"] = .object(resource) }
        if !scope.isEmpty { details["scope"] = .object(scope) }
        if !span.traceState.isEmpty { details["trace_state"] = .string(span.traceState) }
        input.details = .object(details)
        return input
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

    static let digits: [UInt8] = Array("0123456789abcdef".utf8)

    /// Lower-case hex of an id.
    static func hex(_ bytes: Data) -> String {
        var text: [UInt8] = []
        text.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: text, as: UTF8.self)
    }

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
