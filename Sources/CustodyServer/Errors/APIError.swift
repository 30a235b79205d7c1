import CustodyCore
import HTTPTypes
import Hummingbird
import NIOCore

/// An error answer of the API: docs/api.md's envelope `{"ok": false, "error": {"code", "message",
/// "details"}}` with its status. Every error a route or middleware throws becomes one of these in
/// ``init(converting:)`` — the one place where errors map to HTTP.
public struct APIError: HTTPResponseError, Sendable {
    /// The envelope's `code`: a core error's (``CoreError/Code``) or one of the HTTP layer's own.
    public struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        public var rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        /// The code of a core error.
        public init(_ code: CoreError.Code) { rawValue = code.description }

        public static let invalidJSON = Code(.invalidJSON)
        public static let notFound = Code(.notFound)
        public static let internalError = Code(.internalError)
        public static let unauthorized = Code(rawValue: "unauthorized")
        public static let forbidden = Code(rawValue: "forbidden")
        public static let methodNotAllowed = Code(rawValue: "method_not_allowed")
        public static let unsupportedMediaType = Code(rawValue: "unsupported_media_type")
        public static let upgradeRequired = Code(rawValue: "upgrade_required")
        public static let notReady = Code(rawValue: "not_ready")

        public var description: String { rawValue }
    }

    public let status: HTTPResponse.Status
    public let code: Code
    public let message: String
    public let details: JSONValue?
    public let headers: HTTPFields
    /// The core error this answers, when it came from one.
    public let coreError: CoreError?
    /// What failed underneath an `internal` answer (a core error's cause, or an error that is
    /// not ours): logged once, by ``TraceMiddleware``, never sent.
    public private(set) var cause: (any Error)?
    /// A body in another form than the envelope (OTLP answers in `google.rpc.Status`), and its
    /// content type.
    var customBody: (bytes: ByteBuffer, contentType: String)?

    public init(status: HTTPResponse.Status, code: Code, message: String, details: JSONValue? = nil, headers: HTTPFields = [:]) {
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers
        self.coreError = nil
    }

    init(status: HTTPResponse.Status, code: Code, message: String, details: JSONValue?, headers: HTTPFields, coreError: CoreError) {
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
            code: Code(error.code),
            message: error.message,
            details: error.field.map { .object(["field": .string($0)]) },
            headers: headers,
            coreError: error
        )
        cause = error.cause
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
            case .badRequest: self.init(status: .badRequest, code: .invalidJSON, message: error.body ?? "the request is malformed")
            case .methodNotAllowed: self.init(status: .methodNotAllowed, code: .methodNotAllowed, message: "this method is not allowed here")
            case .unsupportedMediaType: self = .unsupportedMediaType
            case .upgradeRequired: self = .upgradeRequired
            default:
                self.init(status: .internalServerError, code: .internalError, message: "the server failed to answer")
                cause = error
            }
        default:
            self.init(status: .internalServerError, code: .internalError, message: "the server failed to answer")
            cause = error
        }
    }

    public static let routeNotFound = APIError(status: .notFound, code: .notFound, message: "there is no such route")
    public static let unsupportedMediaType = APIError(
        status: .unsupportedMediaType,
        code: .unsupportedMediaType,
        message: "the body must be application/json"
    )
    public static let upgradeRequired = APIError(
        status: .upgradeRequired,
        code: .upgradeRequired,
        message: "this is a WebSocket endpoint: connect with an Upgrade: websocket request",
        headers: [.upgrade: "websocket", .connection: "Upgrade"]
    )

    static func methodNotAllowed(allowed: [HTTPRequest.Method]) -> APIError {
        APIError(
            status: .methodNotAllowed,
            code: .methodNotAllowed,
            message: "this route takes \(allowed.map(\.rawValue).joined(separator: ", "))",
            headers: [.allow: allowed.map(\.rawValue).joined(separator: ", ")]
        )
    }

    static func invalidJSON(_ message: String) -> APIError {
        APIError(status: .badRequest, code: .invalidJSON, message: message)
    }

    /// Whether this answer means the request was rejected as invalid before any work (docs/api.md:
    /// such requests append nothing; they are counted instead).
    public var isRejection: Bool {
        [400, 405, 413, 415, 422, 426].contains(status.code) || code == .notFound
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        if let customBody {
            var fields = headers
            fields[.contentType] = customBody.contentType
            return Response(status: status, headers: fields, body: .init(byteBuffer: customBody.bytes))
        }
        var error: [String: JSONValue] = ["code": .string(code.rawValue), "message": .string(message)]
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
