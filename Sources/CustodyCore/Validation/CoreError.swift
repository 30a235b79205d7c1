/// An error from a core operation. Adapters map ``code`` to an HTTP status or RPC status in
/// one place; ``message`` is one human sentence; ``field`` names the offending input field.
public struct CoreError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The error codes of docs/api.md's envelope.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Wrapped: String, Hashable, Sendable {
            case invalidJSON = "invalid_json"
            case invalidArgument = "invalid_argument"
            case payloadTooLarge = "payload_too_large"
            case notFound = "not_found"
            case taskNotFound = "task_not_found"
            case traceNotFound = "trace_not_found"
            case conflict
            case overloaded
            case storageUnavailable = "storage_unavailable"
            case beyondRetention = "beyond_retention"
            case githubNotConfigured = "github_not_configured"
            case internalError = "internal"
        }

        private let wrapped: Wrapped
        private init(_ wrapped: Wrapped) { self.wrapped = wrapped }

        public static let invalidJSON = Code(.invalidJSON)
        public static let invalidArgument = Code(.invalidArgument)
        public static let payloadTooLarge = Code(.payloadTooLarge)
        public static let notFound = Code(.notFound)
        public static let taskNotFound = Code(.taskNotFound)
        public static let traceNotFound = Code(.traceNotFound)
        public static let conflict = Code(.conflict)
        public static let overloaded = Code(.overloaded)
        public static let storageUnavailable = Code(.storageUnavailable)
        public static let beyondRetention = Code(.beyondRetention)
        /// A GitHub operation asked of a server that has no GitHub credentials.
        public static let githubNotConfigured = Code(.githubNotConfigured)
        public static let internalError = Code(.internalError)

        /// The envelope's `code` string.
        public var description: String { wrapped.rawValue }
    }

    public var code: Code
    public var message: String
    /// The input field at fault, for ``Code/invalidArgument`` and ``Code/payloadTooLarge``.
    public var field: String?
    /// What went wrong underneath (a database or log error), kept for the one log line the
    /// adapter writes for an ``Code/internalError``; never shown to a client.
    public var cause: (any Error)?

    public init(_ code: Code, _ message: String, field: String? = nil, cause: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.field = field
        self.cause = cause
    }

    /// An ``Code/internalError`` with the failure underneath it — unless that failure is a store
    /// that cannot be reached now (``Code/storageUnavailable``: the projections' PostgreSQL
    /// server, say), which the caller is told as such, to retry.
    public static func `internal`(_ message: String, _ cause: any Error) -> CoreError {
        if let cause = cause as? CoreError, cause.code == .storageUnavailable {
            return CoreError(.storageUnavailable, "\(message): \(cause.message)", cause: cause)
        }
        return CoreError(.internalError, message, cause: cause)
    }

    /// Equal code, message and field (the cause is not compared).
    public static func == (lhs: CoreError, rhs: CoreError) -> Bool {
        lhs.code == rhs.code && lhs.message == rhs.message && lhs.field == rhs.field
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(code)
        hasher.combine(message)
        hasher.combine(field)
    }

    public static func invalidArgument(_ field: String, _ problem: String) -> CoreError {
        CoreError(.invalidArgument, "\(field) \(problem)", field: field)
    }

    public var description: String { "\(code): \(message)" }

    /// `{"code", "message"}`, as an error span's `details.error` carries it.
    public var jsonValue: JSONValue { .object(["code": .string(code.description), "message": .string(message)]) }
}

extension CoreError {
    /// Whether a request that failed with this error is traced with an `error` span (docs/api.md: a
    /// valid request about something missing, conflicting, or that the server cannot serve), over
    /// HTTP and RPC alike; requests rejected as invalid or refused append nothing.
    public var closesRequestWithErrorSpan: Bool {
        [.notFound, .taskNotFound, .traceNotFound, .conflict, .githubNotConfigured].contains(code)
    }
}
