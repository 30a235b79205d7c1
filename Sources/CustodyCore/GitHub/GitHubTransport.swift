import NIOCore

/// One call to GitHub's REST API, as the outbox decides it: the method, the path under the API's
/// base URL (`/repos/{owner}/{repo}/…`, segments already percent-encoded), the query and a JSON
/// body. It carries no credentials: the transport adds them.
public struct GitHubRequest: Sendable, Hashable {
    public var method: String
    public var path: String
    public var query: [GitHubQueryItem]
    public var body: JSONValue?
    /// The path with its variable parts named, for the `outbound_call` span's operation
    /// (`PUT /repos/{owner}/{repo}/contents/{path}`).
    public var template: String

    public init(method: String, path: String, query: [GitHubQueryItem] = [], body: JSONValue? = nil, template: String) {
        self.method = method
        self.path = path
        self.query = query
        self.body = body
        self.template = template
    }
}

extension GitHubRequest {
    /// Percent-encodes `text` for a URL: everything but RFC 3986's unreserved characters (and `/`
    /// with `keepingSlashes`, for a file path's segments).
    public static func percentEncoded(_ text: String, keepingSlashes: Bool = false) -> String {
        var encoded = ""
        for byte in text.utf8 {
            let isUnreserved =
                (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
                || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".")
                || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "~") || (keepingSlashes && byte == UInt8(ascii: "/"))
            if isUnreserved {
                encoded.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                encoded += "%" + String(byte >> 4, radix: 16, uppercase: true) + String(byte & 0xF, radix: 16, uppercase: true)
            }
        }
        return encoded
    }
}

public struct GitHubQueryItem: Sendable, Hashable {
    public var name: String
    public var value: String

    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }
}

/// GitHub's answer: the status, the headers the outbox reads (lower-cased names: `retry-after`,
/// `x-ratelimit-remaining`, `x-ratelimit-reset`), and the body. A transport removes its
/// credentials from all of it before returning.
public struct GitHubResponse: Sendable {
    public var status: Int
    public var headers: [String: String]
    public var body: ByteBuffer

    public init(status: Int, headers: [String: String] = [:], body: ByteBuffer = ByteBuffer()) {
        self.status = status
        self.headers = headers
        self.body = body
    }
}

/// No answer from GitHub: the connection failed, dropped or timed out. Whether the request
/// reached GitHub is unknown, so the outbox checks GitHub's state before it tries again.
public struct GitHubTransportError: Error, Sendable, CustomStringConvertible {
    /// What happened, in words fit for the log (no credential).
    public var description: String
    /// Whether it was a timeout (for the error's `code`).
    public var timedOut: Bool

    public init(_ description: String, timedOut: Bool = false) {
        self.description = description
        self.timedOut = timedOut
    }
}

/// Sends ``GitHubRequest``s to GitHub (or a GitHub-compatible server) with the credentials. The
/// server implements it over HTTP; the core decides what to call, when to retry, and records
/// everything. Implementations keep the token to themselves: it must appear in no request
/// field, response, header or error they return.
public protocol GitHubTransport: Sendable {
    func send(_ request: GitHubRequest) async throws(GitHubTransportError) -> GitHubResponse
}
