import CustodyCore
import HTTPTypes
import Hummingbird
import NIOCore

/// An error answer of the API: docs/api.md's envelope `{"ok": false, "error": {"code", "message",
/// "details"}}` with its status. Every error a route or middleware throws becomes one of these in
/// ``init(converting:)`` — the one place where errors map to HTTP.
public struct APIError: HTTPResponseError, Sendable {
    public let status: HTTPResponse.Status
    public let code: String
    public let message: String
    public let details: JSONValue?
    public let headers: HTTPFields
    /// The core error this answers, when it came from one.
    public let coreError: CoreError?
    /// A body in another form than the envelope (OTLP answers in `google.rpc.Status`), and its
    /// content type.
    var customBody: (bytes: ByteBuffer, contentType: String)?

    public init(status: HTTPResponse.Status, code: String, message: String, details: JSONValue? = nil, headers: HTTPFields = [:]) {
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers
        self.coreError = nil
    }

    init(status: HTTPResponse.Status, code: String, message: String, details: JSONValue?, headers: HTTPFields, coreError: CoreError) {
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers
        self.coreError = coreError
    }

    /// The seconds a client is told to wait after `overloaded`.
    static let retryAfterSeconds = 1

    /// A core error, mapped by its code (docs/api.md's table).
    public init(_ error: CoreError) {
        let status = ErrorStatusTable.httpStatus(error.code)
        var headers: HTTPFields = [:]
        if error.code == .overloaded { headers[.retryAfter] = String(Self.retryAfterSeconds) }
        self.init(
            status: status,
            code: error.code.description,
            message: error.message,
            details: error.field.map { .object(["field": .string($0)]) },
            headers: headers,
            coreError: error
        )
    }

    /// Any error thrown while answering a request. Errors that are not ours (a bug, a library's)
    /// become `internal` with a message that leaks nothing.
    public init(converting error: any Error) {
        switch error {
        case let error as APIError:
            self = error
        case let error as CoreError:
            self.init(error)
        case let error as HTTPError:
            switch error.status {
            case .notFound: self = .routeNotFound
            case .contentTooLarge: self.init(CoreError(.payloadTooLarge, "the body is over the limit", field: nil))
            case .badRequest: self.init(status: .badRequest, code: "invalid_json", message: error.body ?? "the request is malformed")
            case .methodNotAllowed: self.init(status: .methodNotAllowed, code: "method_not_allowed", message: "this method is not allowed here")
            case .unsupportedMediaType: self = .unsupportedMediaType
            case .upgradeRequired: self = .upgradeRequired
            default: self.init(status: .internalServerError, code: "internal", message: "the server failed to answer")
            }
        default:
            self.init(status: .internalServerError, code: "internal", message: "the server failed to answer")
        }
    }

    public static let routeNotFound = APIError(status: .notFound, code: "not_found", message: "there is no such route")
    public static let unsupportedMediaType = APIError(
        status: .unsupportedMediaType,
        code: "unsupported_media_type",
        message: "the body must be application/json"
    )
    public static let upgradeRequired = APIError(
        status: .upgradeRequired,
        code: "upgrade_required",
        message: "this is a WebSocket endpoint: connect with an Upgrade: websocket request",
        headers: [.upgrade: "websocket", .connection: "Upgrade"]
    )

    static func methodNotAllowed(allowed: [HTTPRequest.Method]) -> APIError {
        APIError(
            status: .methodNotAllowed,
            code: "method_not_allowed",
            message: "this route takes \(allowed.map(\.rawValue).joined(separator: ", "))",
            headers: [.allow: allowed.map(\.rawValue).joined(separator: ", ")]
        )
    }

    static func invalidJSON(_ message: String) -> APIError {
        APIError(status: .badRequest, code: "invalid_json", message: message)
    }

    /// Whether this answer means the request was rejected as invalid before any work (docs/api.md:
    /// such requests append nothing; they are counted instead).
    public var isRejection: Bool {
        [400, 405, 413, 415, 422, 426].contains(status.code) || code == "not_found"
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        if let customBody {
            var fields = headers
            fields[.contentType] = customBody.contentType
            return Response(status: status, headers: fields, body: .init(byteBuffer: customBody.bytes))
        }
        var error: [String: JSONValue] = ["code": .string(code), "message": .string(message)]
        if let details { error["details"] = details }
        var fields = headers
        fields[.contentType] = "application/json; charset=utf-8"
        return Response(
            status: status,
            headers: fields,
            body: .init(byteBuffer: JSONValue.object(["ok": .bool(false), "error": .object(error)]).jsonText.bytes)
        )
    }
}
