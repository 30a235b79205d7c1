import CustodyCore
import HTTPTypes
import Hummingbird

/// What a bearer token lets its holder do (docs/benchmarks.md R8). Each role includes the ones below it.
public enum AccessRole: Int, Sendable, Comparable, CaseIterable {
    /// Send spans: `POST /api/logs` (and OTLP when it lands).
    case ingest = 1
    /// Everything an operator of the fleet does: tasks, deliveries, traces, the live stream,
    /// metrics.
    case `operator` = 2
    /// Also `/api/admin/*`.
    case admin = 3

    public init?(name: String) {
        switch name {
        case "ingest": self = .ingest
        case "operator": self = .operator
        case "admin": self = .admin
        default: return nil
        }
    }

    public static func < (lhs: AccessRole, rhs: AccessRole) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// Requires `Authorization: Bearer <token>` with a role high enough for the route, when tokens
/// are configured (always, when the server listens beyond loopback). `/healthz` and `/readyz`
/// stay open for probes. A browser's WebSocket cannot send headers, so the live stream also
/// takes `?access_token=`. A missing or unknown token is 401 with `WWW-Authenticate`; a token
/// whose role is too low, 403. Tokens are compared in constant time and never logged or echoed.
public struct BearerTokenMiddleware: RouterMiddleware {
    public typealias Context = CustodyRequestContext
    let tokens: [(token: [UInt8], role: AccessRole)]

    public init(tokens: [String: AccessRole]) {
        self.tokens = tokens.map { (Array($0.key.utf8), $0.value) }
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard !tokens.isEmpty else { return try await next(request, context) }
        let path = request.uri.path
        if path == "/healthz" || path == "/readyz" || DashboardFiles.isFile(request.method, path: path) {
            return try await next(request, context)
        }
        var presented = request.headers[.authorization].flatMap(Self.bearerToken)
        if presented == nil, path == "/api/traces/live", let token = request.uri.queryParameters["access_token"] {
            presented = String(token)
        }
        guard let presented, let role = role(of: presented) else {
            throw APIError(
                status: .unauthorized,
                code: .unauthorized,
                message: "this server needs a bearer token (Authorization: Bearer …)",
                headers: [.wwwAuthenticate: "Bearer realm=\"custody\""]
            )
        }
        let needed = Self.role(for: request.method, path: path)
        guard role >= needed else {
            throw APIError(status: .forbidden, code: .forbidden, message: "this token's role cannot do this (it needs \(needed))")
        }
        return try await next(request, context)
    }

    /// The role a request needs.
    static func role(for method: HTTPRequest.Method, path: String) -> AccessRole {
        if path.hasPrefix("/api/admin/") || path == "/api/admin" { return .admin }
        if method == .post && (path == "/api/logs" || path == "/v1/traces") { return .ingest }
        return .operator
    }

    /// The token of an `Authorization: Bearer <token>` value (the scheme in any case).
    static func bearerToken(_ header: String) -> String? {
        guard header.count > 7, header.prefix(7).lowercased() == "bearer " else { return nil }
        return String(header.dropFirst(7)).trimmingSpaces()
    }

    /// The role of a presented token; every configured token is compared, each in constant time.
    func role(of presented: String) -> AccessRole? {
        let bytes = Array(presented.utf8)
        var found: AccessRole?
        for (token, role) in tokens {
            var difference = UInt8(token.count == bytes.count ? 0 : 1)
            for index in 0..<token.count { difference |= token[index] ^ (index < bytes.count ? bytes[index] : 0) }
            if difference == 0 { found = role }
        }
        return found
    }
}

extension String {
    func trimmingSpaces() -> String {
        String(drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
    }
}

extension HTTPField.Name {
    static let wwwAuthenticate = HTTPField.Name("www-authenticate")!
}
