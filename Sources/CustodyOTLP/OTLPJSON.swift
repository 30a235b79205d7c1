import CustodyCore
import NIOCore
import SwiftProtobuf

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The OTLP JSON encoding (OTLP specification, "JSON Protobuf Encoding"): the proto3 JSON mapping
/// except that trace and span ids are hex strings (case-insensitive) instead of base64. Enum
/// values as integers and 64-bit integers as strings or numbers are proto3 JSON already; unknown
/// fields are ignored.
public enum OTLPJSON {
    public struct Invalid: Error, Sendable {
        public let message: String
    }

    static let idKeys: Set<String> = ["traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id"]

    /// Decodes an export request from OTLP JSON.
    public static func request(from bytes: [UInt8]) throws(Invalid) -> OTLPSpanMapping.Request {
        let value: JSONValue
        do {
            value = try JSONDecoder().decode(JSONValue.self, from: Data(bytes))
        } catch {
            throw Invalid(message: "the body is not JSON")
        }
        let converted = try convertIds(value)
        var options = JSONDecodingOptions()
        options.ignoreUnknownFields = true
        do {
            let text = converted.jsonText
            return try OTLPSpanMapping.Request(jsonUTF8Bytes: Array(text.bytes.readableBytesView), options: options)
        } catch {
            throw Invalid(message: "the body is not an ExportTraceServiceRequest: \(error)")
        }
    }

    /// The response in OTLP JSON.
    public static func encode(_ response: Opentelemetry_Proto_Collector_Trace_V1_ExportTraceServiceResponse) -> [UInt8] {
        (try? response.jsonUTF8Bytes()) ?? Array("{}".utf8)
    }

    /// Hex ids become the base64 that the proto3 JSON mapping expects for `bytes`.
    static func convertIds(_ value: JSONValue) throws(Invalid) -> JSONValue {
        switch value {
        case .array(let values):
            var converted: [JSONValue] = []
            converted.reserveCapacity(values.count)
            for element in values { converted.append(try convertIds(element)) }
            return .array(converted)
        case .object(let fields):
            var converted: [String: JSONValue] = [:]
            for (key, field) in fields {
                if idKeys.contains(key), case .string(let hex) = field {
                    guard let bytes = Hex.decode(hex) else { throw Invalid(message: "\(key) is not hex: \(hex.prefix(64))") }
                    converted[key] = .string(Data(bytes).base64EncodedString())
                } else {
                    converted[key] = try convertIds(field)
                }
            }
            return .object(converted)
        default:
            return value
        }
    }
}
