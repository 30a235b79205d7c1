import CustodyCore
import NIOCore

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Zipkin v2 JSON spans (what Zipkin reporters and the OpenTelemetry Zipkin exporter send) as
/// Custody spans, by docs/api.md "Zipkin": `source` is `localEndpoint.serviceName`; `operation`
/// the `name`; `stage` the tag `custody.stage` when present, else `error` when the tag `error` is
/// present, else `span`; `timestamp` and `duration` (µs) the timestamp and `duration_ms`; ids
/// lower-case hex (a shorter id padded with zeros to 16, or a trace id to 32, as Zipkin does).
/// `kind`, `tags` (without `custody.stage`), `annotations` and `remoteEndpoint` go into `details`,
/// and `error` with the error tag's text. Unknown fields are ignored; a field of the wrong type
/// refuses the whole body, naming the field (`[2].duration`).
enum ZipkinSpans {
    static func spans(from value: JSONValue) throws(CoreError) -> [SpanInput] {
        guard case .array(let elements) = value else {
            throw CoreError(.invalidJSON, "a Zipkin v2 body is a JSON array of spans")
        }
        var spans: [SpanInput] = []
        spans.reserveCapacity(elements.count)
        for (index, element) in elements.enumerated() {
            do {
                spans.append(try span(element))
            } catch {
                throw error.prefixingField("[\(index)]")
            }
        }
        return spans
    }

    static func span(_ value: JSONValue) throws(CoreError) -> SpanInput {
        guard case .object(let fields) = value else { throw CoreError(.invalidArgument, "a span must be a JSON object") }
        var input = SpanInput()
        input.traceId = try identifier(fields, "traceId", required: true, maximumDigits: 32)
        input.spanId = try identifier(fields, "id", required: true, maximumDigits: 16)
        input.parentSpanId = try identifier(fields, "parentId", required: false, maximumDigits: 16)
        let name = try string(fields, "name")
        input.operation = name.flatMap { $0.isEmpty ? nil : $0 } ?? "unknown"
        if let timestamp = try microseconds(fields, "timestamp") {
            guard timestamp <= Int64.max / 1000 else { throw CoreError.invalidArgument("timestamp", "is too far in the future") }
            input.timestampNanoseconds = timestamp * 1000
        }
        if let duration = try microseconds(fields, "duration") { input.durationMs = Double(duration) / 1000 }
        var local: [String: JSONValue] = [:]
        if let endpoint = try endpoint(fields, "localEndpoint") { local = endpoint }
        if case .string(let service)? = local["serviceName"], !service.isEmpty { input.source = service }

        var details: [String: JSONValue] = [:]
        if let kind = try string(fields, "kind") {
            guard ["CLIENT", "SERVER", "PRODUCER", "CONSUMER"].contains(kind) else {
                throw CoreError.invalidArgument("kind", "must be CLIENT, SERVER, PRODUCER or CONSUMER")
            }
            details["kind"] = .string(kind)
        }
        var tags: [String: JSONValue] = [:]
        switch fields["tags"] {
        case nil, .null?: break
        case .object(let given)?:
            for (key, tag) in given {
                guard case .string = tag else { throw CoreError.invalidArgument("tags.\(key)", "must be a string") }
                tags[key] = tag
            }
        default: throw CoreError.invalidArgument("tags", "must be an object of strings")
        }
        if case .string(let stage)? = tags.removeValue(forKey: "custody.stage") {
            input.stage = stage
        }
        if case .string(let error)? = tags["error"] {
            input.stage = input.stage ?? "error"
            details["error"] = .string(error.isEmpty ? "error" : error)
        }
        input.stage = input.stage ?? "span"
        if !tags.isEmpty { details["tags"] = .object(tags) }
        switch fields["annotations"] {
        case nil, .null?: break
        case .array(let annotations)?:
            var kept: [JSONValue] = []
            for (index, annotation) in annotations.enumerated() {
                guard case .object(let annotation) = annotation else {
                    throw CoreError.invalidArgument("annotations[\(index)]", "must be an object")
                }
                do throws(CoreError) {
                    guard let time = try microseconds(annotation, "timestamp") else {
                        throw CoreError.invalidArgument("timestamp", "is required")
                    }
                    guard time <= Int64.max / 1000 else { throw CoreError.invalidArgument("timestamp", "is too far in the future") }
                    guard let text = try string(annotation, "value") else { throw CoreError.invalidArgument("value", "is required") }
                    kept.append(.object(["timestamp": .integer(time), "value": .string(text)]))
                } catch {
                    throw error.prefixingField("annotations[\(index)]")
                }
            }
            if !kept.isEmpty { details["annotations"] = .array(kept) }
        default: throw CoreError.invalidArgument("annotations", "must be an array")
        }
        if let remote = try endpoint(fields, "remoteEndpoint"), !remote.isEmpty { details["remoteEndpoint"] = .object(remote) }
        if !details.isEmpty { input.detailsText = JSONValue.object(details).jsonText }
        return input
    }

    /// An id: 1–`maximumDigits` hex digits, lower-cased and padded with zeros to 16 (or 32).
    static func identifier(_ fields: [String: JSONValue], _ key: String, required: Bool, maximumDigits: Int) throws(CoreError) -> String? {
        guard let text = try string(fields, key) else {
            if required { throw CoreError.invalidArgument(key, "is required") }
            return nil
        }
        guard (1...maximumDigits).contains(text.utf8.count), text.utf8.allSatisfy({ Hex.value($0) != nil }) else {
            throw CoreError.invalidArgument(key, "must be 1–\(maximumDigits) hex digits")
        }
        let width = text.utf8.count <= 16 ? 16 : 32
        return String(repeating: "0", count: width - text.utf8.count) + text.lowercased()
    }

    static func string(_ fields: [String: JSONValue], _ key: String) throws(CoreError) -> String? {
        switch fields[key] {
        case nil, .null?: return nil
        case .string(let text)?: return text
        default: throw CoreError.invalidArgument(key, "must be a string")
        }
    }

    /// A whole, non-negative number of microseconds.
    static func microseconds(_ fields: [String: JSONValue], _ key: String) throws(CoreError) -> Int64? {
        switch fields[key] {
        case nil, .null?: return nil
        case .integer(let number)? where number >= 0: return number
        case .number(let number)? where number >= 0 && number == number.rounded() && number < 9.2e18: return Int64(number)
        default: throw CoreError.invalidArgument(key, "must be a whole number of microseconds ≥ 0")
        }
    }

    /// An endpoint: `serviceName`, `ipv4`, `ipv6` strings and a `port` number, each optional.
    static func endpoint(_ fields: [String: JSONValue], _ key: String) throws(CoreError) -> [String: JSONValue]? {
        switch fields[key] {
        case nil, .null?: return nil
        case .object(let endpoint)?:
            var kept: [String: JSONValue] = [:]
            do throws(CoreError) {
                for name in ["serviceName", "ipv4", "ipv6"] {
                    if let text = try string(endpoint, name) { kept[name] = .string(text) }
                }
                switch endpoint["port"] {
                case nil, .null?: break
                case .integer(let port)? where (0...65535).contains(port): kept["port"] = .integer(port)
                default: throw CoreError.invalidArgument("port", "must be a port number")
                }
            } catch {
                throw error.prefixingField(key)
            }
            return kept
        default: throw CoreError.invalidArgument(key, "must be an object")
        }
    }
}
