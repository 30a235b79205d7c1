import CustodyCore
import HTTPTypes
import Hummingbird
import NIOCore

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Reads a JSON request body into a request type, with docs/api.md's errors: 415 for another media
/// type, 413 over the size limit, 400 `invalid_json` for anything that is not JSON (or not the
/// JSON type expected at the top), 422 `invalid_argument` naming the field for a field of the
/// wrong type. Nothing is decoded before the size and nesting checks pass.
enum JSONBody {
    static func decode<T: Decodable>(_ type: T.Type, from request: Request, context: CustodyRequestContext, limits: ServerLimits) async throws -> T {
        try decode(type, from: try await collect(request, limits: limits), limits: limits)
    }

    /// The body of a `recordLog` request, through the streaming span parser (the ingest path).
    static func logEntries(from request: Request, limits: ServerLimits) async throws -> (entries: LogOperations.Entries, bytes: Int) {
        let body = try await collect(request, limits: limits)
        do {
            return (try SpanJSONParser.parseLogBody(body, maximumDepth: limits.maximumJSONDepth), body.readableBytes)
        } catch {
            throw APIError(error)
        }
    }

    /// The body, once its media type is JSON's and it is within the size limit.
    static func collect(_ request: Request, limits: ServerLimits) async throws -> ByteBuffer {
        if let contentType = request.headers[.contentType] {
            let mediaType = String(contentType.split(separator: ";", maxSplits: 1).first ?? "").filter { $0 != " " && $0 != "\t" }.lowercased()
            guard mediaType == "application/json" || (mediaType.hasPrefix("application/") && mediaType.hasSuffix("+json")) else {
                throw APIError.unsupportedMediaType
            }
        }
        do {
            return try await request.body.collect(upTo: limits.maximumBodyBytes)
        } catch {
            throw APIError(CoreError(.payloadTooLarge, "the body is over \(limits.maximumBodyBytes) bytes"))
        }
    }

    static func decode<T: Decodable>(_ type: T.Type, from body: ByteBuffer, limits: ServerLimits) throws -> T {
        do {
            try SpanJSONParser.validate(body, maximumDepth: limits.maximumJSONDepth)
        } catch {
            throw APIError(error)
        }
        do {
            return try JSONDecoder().decode(type, from: Data(body.readableBytesView))
        } catch let error as CoreError {
            throw APIError(error)
        } catch let error as DecodingError {
            throw APIError(decoding: error)
        } catch let error as APIError {
            throw error
        } catch {
            // The decoder's own parse errors (invalid UTF-8, raw control characters in strings).
            throw APIError.invalidJSON("the body is not valid JSON")
        }
    }
}

extension APIError {
    /// A decoding failure: at the top it is not the JSON expected (400); at a field, the field is
    /// of the wrong type (422, naming it).
    init(decoding error: DecodingError) {
        func path(_ codingPath: [any CodingKey]) -> String {
            var text = ""
            for key in codingPath {
                if let index = key.intValue {
                    text += "[\(index)]"
                } else {
                    text += text.isEmpty ? key.stringValue : ".\(key.stringValue)"
                }
            }
            return text
        }
        switch error {
        case .typeMismatch(_, let context), .valueNotFound(_, let context):
            let field = path(context.codingPath)
            if field.isEmpty {
                self = .invalidJSON("the body is not the JSON expected here (an object)")
            } else {
                self.init(CoreError.invalidArgument(field, "is of the wrong type"))
            }
        case .keyNotFound(let key, let context):
            let field = path(context.codingPath + [key])
            self.init(CoreError.invalidArgument(field, "is required"))
        case .dataCorrupted(let context):
            // The JSON text itself is bad (syntax, invalid UTF-8, a raw control character in a
            // string), wherever the decoder noticed it.
            let field = path(context.codingPath)
            self = .invalidJSON(field.isEmpty ? "the body is not valid JSON" : "the body is not valid JSON (at \(field))")
        @unknown default:
            self = .invalidJSON("the body is not valid JSON")
        }
    }
}

/// Decoding of request fields: a field of the wrong JSON type is an error naming the field;
/// `null` counts as absent.
struct FieldKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(_ name: String) { stringValue = name }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

extension KeyedDecodingContainer where Key == FieldKey {
    func string(_ name: String) throws -> String? {
        do {
            return try decodeIfPresent(String.self, forKey: FieldKey(name))
        } catch DecodingError.typeMismatch, DecodingError.valueNotFound {
            throw CoreError.invalidArgument(name, "must be a string")
        }
    }

    func number(_ name: String) throws -> Double? {
        do {
            return try decodeIfPresent(Double.self, forKey: FieldKey(name))
        } catch DecodingError.typeMismatch, DecodingError.valueNotFound, DecodingError.dataCorrupted {
            throw CoreError.invalidArgument(name, "must be a number")
        }
    }

    func boolean(_ name: String) throws -> Bool? {
        do {
            return try decodeIfPresent(Bool.self, forKey: FieldKey(name))
        } catch DecodingError.typeMismatch, DecodingError.valueNotFound {
            throw CoreError.invalidArgument(name, "must be true or false")
        }
    }

    func strings(_ name: String) throws -> [String]? {
        do {
            return try decodeIfPresent([String].self, forKey: FieldKey(name))
        } catch DecodingError.typeMismatch, DecodingError.valueNotFound {
            throw CoreError.invalidArgument(name, "must be an array of strings")
        }
    }

    func json(_ name: String) throws -> JSONValue? {
        let value = try decodeIfPresent(JSONValue.self, forKey: FieldKey(name))
        if case .null? = value { return nil }
        return value
    }

}

extension Decoder {
    /// The body's fields; a body that is not a JSON object is `invalid_json` (400).
    func fields() throws -> KeyedDecodingContainer<FieldKey> {
        do {
            return try container(keyedBy: FieldKey.self)
        } catch {
            throw APIError.invalidJSON("the body must be a JSON object")
        }
    }
}
