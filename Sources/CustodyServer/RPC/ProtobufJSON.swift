import CustodyCore
import NIOCore
import SwiftProtobuf

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The RPC messages and the core's JSON meet here: the proto's field names are docs/api.md's, so a
/// core answer's JSON decodes into its message field for field (SwiftProtobuf's JSON mapping, which
/// takes proto field names), and `google.protobuf.Struct` converts to and from ``JSONValue``.
enum ProtobufJSON {
    static let decoding: JSONDecodingOptions = {
        var options = JSONDecodingOptions()
        options.ignoreUnknownFields = true
        return options
    }()

    /// A message from the JSON of a core result (`null` members count as absent).
    static func message<M: SwiftProtobuf.Message>(_ type: M.Type, from value: JSONValue) throws -> M {
        try M(jsonUTF8Bytes: Array(value.jsonText.bytes.readableBytesView), options: decoding)
    }

    /// A `Struct` as JSON, or nil when the field was not set; `field` names it in errors.
    static func json(_ value: Google_Protobuf_Struct?, _ field: String) throws(CoreError) -> JSONValue? {
        guard let value else { return nil }
        do {
            let bytes: [UInt8] = try value.jsonUTF8Bytes()
            return try JSONDecoder().decode(JSONValue.self, from: Data(bytes))
        } catch {
            throw CoreError.invalidArgument(field, "is not a JSON object")
        }
    }

    /// A JSON object as a `Struct` (numbers become doubles, as `Struct` holds them).
    static func structure(_ value: JSONValue) throws -> Google_Protobuf_Struct {
        try Google_Protobuf_Struct(jsonUTF8Bytes: Array(value.jsonText.bytes.readableBytesView))
    }

}
