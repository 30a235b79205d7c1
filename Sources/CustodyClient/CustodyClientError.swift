/// A call to Custody that failed: the server's error envelope (docs/api.md "Errors") — its HTTP
/// status, `code`, `message` and `field` — or a transport failure (`status` 0, code
/// `unreachable`).
public struct CustodyClientError: Error, CustomStringConvertible, Sendable, Hashable {
    /// The HTTP status, or 0 when no answer came.
    public var status: Int
    /// docs/api.md's error code (`task_not_found`, `invalid_argument`, `overloaded`, …) or `unreachable`.
    public var code: String
    public var message: String
    /// The field the error is about, when it is about one.
    public var field: String?
    /// How long the server asked to wait before retrying (429, 503).
    public var retryAfter: Duration?

    public init(status: Int, code: String, message: String, field: String? = nil, retryAfter: Duration? = nil) {
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.retryAfter = retryAfter
    }

    /// Whether sending the same request again later may succeed: no answer, overload, storage
    /// unavailable, or a server error.
    public var isTransient: Bool { status == 0 || status == 429 || status == 503 || status == 507 || status >= 500 }

    public var description: String {
        status == 0 ? "\(code): \(message)" : "\(status) \(code): \(message)" + (field.map { " (field \($0))" } ?? "")
    }
}
