import NIOCore

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A span as a client sends it (docs/api.md "Span / log entry"), before validation. Decoding checks
/// JSON types; ``validated(now:newTraceId:)`` applies the limits and defaults. Every problem
/// names its field.
public struct SpanInput: Sendable, Hashable, Decodable {
    public var traceId: String?
    public var spanId: String?
    public var parentSpanId: String?
    public var source: String?
    public var stage: String?
    public var operation: String?
    public var taskUUID: String?
    public var durationMs: Double?
    public var timestamp: String?
    public var details: JSONValue?
    /// `details` as the client sent it (checked JSON text of an object), from
    /// ``SpanJSONParser``; used as it is, never re-encoded. Takes precedence over ``details``.
    public var detailsText: JSONText?
    /// The timestamp as nanoseconds since the epoch (OTLP's own form); takes precedence over
    /// ``timestamp``.
    public var timestampNanoseconds: Int64?

    public init(
        traceId: String? = nil,
        spanId: String? = nil,
        parentSpanId: String? = nil,
        source: String? = nil,
        stage: String? = nil,
        operation: String? = nil,
        taskUUID: String? = nil,
        durationMs: Double? = nil,
        timestamp: String? = nil,
        details: JSONValue? = nil
    ) {
        self.traceId = traceId
        self.spanId = spanId
        self.parentSpanId = parentSpanId
        self.source = source
        self.stage = stage
        self.operation = operation
        self.taskUUID = taskUUID
        self.durationMs = durationMs
        self.timestamp = timestamp
        self.details = details
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case traceId = "trace_id"
        case spanId = "span_id"
        case parentSpanId = "parent_span_id"
        case source, stage, operation
        case taskUUID = "task_uuid"
        case durationMs = "duration_ms"
        case timestamp, details
    }

    /// Type errors become ``CoreError`` naming the field (JSON `null` counts as absent).
    public init(from decoder: any Decoder) throws {
        let container: KeyedDecodingContainer<CodingKeys>
        do {
            container = try decoder.container(keyedBy: CodingKeys.self)
        } catch {
            throw CoreError(.invalidArgument, "a span must be a JSON object")
        }
        func decode<T: Decodable>(_ type: T.Type, _ key: CodingKeys, _ what: String) throws -> T? {
            do {
                return try container.decodeIfPresent(type, forKey: key)
            } catch DecodingError.typeMismatch, DecodingError.valueNotFound {
                throw CoreError.invalidArgument(key.rawValue, "must be \(what)")
            }
            // Any other error means the JSON text itself is bad (invalid UTF-8, a raw control
            // character): it goes up as it is, and the caller reports it as such.
        }
        traceId = try decode(String.self, .traceId, "a string")
        spanId = try decode(String.self, .spanId, "a string")
        parentSpanId = try decode(String.self, .parentSpanId, "a string")
        source = try decode(String.self, .source, "a string")
        stage = try decode(String.self, .stage, "a string")
        operation = try decode(String.self, .operation, "a string")
        taskUUID = try decode(String.self, .taskUUID, "a string")
        durationMs = try decode(Double.self, .durationMs, "a number")
        timestamp = try decode(String.self, .timestamp, "an RFC 3339 timestamp string")
        details = try decode(JSONValue.self, .details, "a JSON object")
    }

    /// The most bytes a span's `details` may take, encoded.
    public static let maximumDetailsBytes = 64 << 10
    /// The longest `duration_ms` taken (~31.7 years): its nanoseconds fit a timestamp.
    public static let maximumDurationMs = 1e12

    /// Applies docs/api.md's rules: lengths, characters, ranges, defaults. `now` (ns since the
    /// epoch) stands in for a missing timestamp; `newTraceId` makes a trace id when none is given.
    public func validated(now: Int64, newTraceId: () -> String) throws(CoreError) -> Span {
        let traceId =
            try traceId.map { id throws(CoreError) in
                guard TraceIdentifier.isValid(id) else {
                    throw CoreError.invalidArgument("trace_id", "must be 1–128 characters of A–Z, a–z, 0–9, '.', '_', ':' or '-'")
                }
                return id
            } ?? newTraceId()
        let timestampNanoseconds: Int64
        if let given = self.timestampNanoseconds {
            timestampNanoseconds = given
        } else if let timestamp {
            guard let parsed = RFC3339.nanoseconds(timestamp) else {
                throw CoreError.invalidArgument("timestamp", "must be an RFC 3339 timestamp such as 2026-11-03T21:00:00.123Z")
            }
            timestampNanoseconds = parsed
        } else {
            timestampNanoseconds = now
        }
        if let durationMs {
            guard durationMs.isFinite, durationMs >= 0 else { throw CoreError.invalidArgument("duration_ms", "must be a number ≥ 0") }
            guard durationMs <= Self.maximumDurationMs,
                !timestampNanoseconds.addingReportingOverflow(Int64(durationMs * 1_000_000)).overflow
            else {
                throw CoreError.invalidArgument(
                    "duration_ms",
                    "must be at most \(Int64(Self.maximumDurationMs)) (about 31 years), ending before 2262"
                )
            }
        }
        var detailsText: JSONText?
        if let text = self.detailsText {
            guard text.bytes.readableBytes <= Self.maximumDetailsBytes else {
                throw CoreError(
                    .payloadTooLarge,
                    "details is \(text.bytes.readableBytes) bytes; the limit is \(Self.maximumDetailsBytes)",
                    field: "details"
                )
            }
            detailsText = text
        } else if let details {
            guard details.objectValue != nil else { throw CoreError.invalidArgument("details", "must be a JSON object") }
            let text = details.jsonText
            guard text.bytes.readableBytes <= Self.maximumDetailsBytes else {
                throw CoreError(
                    .payloadTooLarge,
                    "details is \(text.bytes.readableBytes) bytes encoded; the limit is \(Self.maximumDetailsBytes)",
                    field: "details"
                )
            }
            detailsText = text
        }
        return Span(
            traceId: traceId,
            spanId: try Self.optional(spanId, "span_id", maximum: 128),
            parentSpanId: try Self.optional(parentSpanId, "parent_span_id", maximum: 128),
            source: try Self.required(source, "source", default: "unknown", maximum: 64),
            stage: try Self.required(stage, "stage", default: "processing", maximum: 64),
            operation: try Self.required(operation, "operation", default: "unknown", maximum: 256),
            taskUUID: try Self.optional(taskUUID, "task_uuid", maximum: 128),
            durationMs: durationMs,
            timestamp: timestampNanoseconds,
            details: detailsText
        )
    }

    static func required(_ value: String?, _ field: String, default fallback: String, maximum: Int) throws(CoreError) -> String {
        guard let value else { return fallback }
        return try check(value, field, maximum: maximum)
    }

    static func optional(_ value: String?, _ field: String, maximum: Int) throws(CoreError) -> String? {
        guard let value else { return nil }
        return try check(value, field, maximum: maximum)
    }

    static func check(_ value: String, _ field: String, maximum: Int) throws(CoreError) -> String {
        let bytes = value.utf8.count
        // A string never has more characters than UTF-8 bytes: count characters only when the
        // bytes alone do not settle it.
        guard bytes >= 1, bytes <= maximum || value.count <= maximum else {
            throw CoreError.invalidArgument(field, "must be 1–\(maximum) characters")
        }
        let hasControl =
            value.utf8.contains { $0 < 0x20 || $0 == 0x7F }
            || (bytes > value.unicodeScalars.count && value.unicodeScalars.contains { $0.properties.generalCategory == .control })
        guard !hasControl else { throw CoreError.invalidArgument(field, "must not contain control characters") }
        return value
    }
}

/// Trace ids (docs/api.md): 1–128 characters of `[A-Za-z0-9._:-]`.
public enum TraceIdentifier {
    public static func isValid(_ id: String) -> Bool {
        let utf8 = id.utf8
        guard utf8.count >= 1, utf8.count <= 128 else { return false }
        return utf8.allSatisfy { byte in
            (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
                || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "_")
                || byte == UInt8(ascii: ":") || byte == UInt8(ascii: "-")
        }
    }
}
