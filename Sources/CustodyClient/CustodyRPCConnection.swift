import CustodyRPC
import GRPCCore
import GRPCNIOTransportHTTP2

/// A gRPC connection to Custody's RPC port (`custody serve --rpc-port`, default 8788), for a
/// ``CustodyClient`` that sends its operations over gRPC instead of HTTP/JSON: the same typed
/// calls, the same errors, the current trace sent as `x-trace-id` / `traceparent` metadata.
///
/// It keeps one HTTP/2 connection (grpc-swift's client, run on a task of its own from creation
/// until ``close()``); calls are multiplexed on it and may run concurrently.
public final class CustodyRPCConnection: Sendable {
    /// grpc-swift's client, for the generated service clients (`Custody_V1_LogOps.Client(wrapping:)`)
    /// when the typed calls of ``CustodyClient`` are not what is wanted.
    public let client: GRPCClient<HTTP2ClientTransport.Posix>
    /// A bearer token, when the server requires one.
    let token: String?
    /// How long one call may take.
    let timeout: Duration
    private let connections: Task<Void, Never>

    /// Connects to `host:port` (plaintext HTTP/2).
    public init(host: String, port: Int, token: String? = nil, timeout: Duration = .seconds(30)) throws {
        let target: any ResolvableTarget =
            host.contains(":")
            ? .ipv6(address: host, port: port)
            : host.first?.isNumber == true
                ? .ipv4(address: host, port: port) : .dns(host: host, port: port)
        let client = GRPCClient(transport: try HTTP2ClientTransport.Posix(target: target, transportSecurity: .plaintext))
        self.client = client
        self.token = token
        self.timeout = timeout
        connections = Task { try? await client.runConnections() }
    }

    /// Stops taking calls, lets those in flight finish, and closes the connection.
    public func close() {
        client.beginGracefulShutdown()
    }

    deinit {
        client.beginGracefulShutdown()
    }

    /// The metadata of a call: the current trace and the token.
    var metadata: Metadata {
        var metadata: Metadata = [:]
        if let trace = CustodyTrace.current {
            metadata.addString(trace.traceId, forKey: "x-trace-id")
            if let parent = TraceParent.header(forTrace: trace.traceId) { metadata.addString(parent, forKey: "traceparent") }
        }
        if let token { metadata.addString("Bearer \(token)", forKey: "authorization") }
        return metadata
    }

    /// The call options of every call: the timeout, and waiting (within it) for the connection to
    /// be up rather than failing at once while it reconnects — a worker may start before Custody,
    /// or Custody restart under it.
    public var options: CallOptions {
        var options = CallOptions.defaults
        options.timeout = timeout
        options.waitForReady = true
        return options
    }

    /// Runs one call; a gRPC error becomes the ``CustodyClientError`` the HTTP transport would
    /// give (the server's docs/api.md code and field from the trailers, an HTTP-like status).
    func call<Value: Sendable>(
        _ body: (GRPCClient<HTTP2ClientTransport.Posix>, Metadata, CallOptions) async throws -> Value
    ) async throws(CustodyClientError) -> Value {
        do {
            return try await body(client, metadata, options)
        } catch let error as RPCError {
            throw CustodyClientError(rpc: error)
        } catch let error as CustodyClientError {
            throw error
        } catch {
            throw CustodyClientError(status: 0, code: "unreachable", message: "the RPC failed: \(error)")
        }
    }
}

extension CustodyClientError {
    /// An RPC failure as the HTTP API would have reported it.
    init(rpc error: RPCError) {
        let code = error.metadata[stringValues: "custody-error-code"].first { _ in true }
        let field = error.metadata[stringValues: "custody-error-field"].first { _ in true }
        let status: Int
        switch error.code {
        case .invalidArgument: status = code == "invalid_json" ? 400 : code == "payload_too_large" ? 413 : 422
        case .notFound: status = 404
        case .alreadyExists: status = 409
        case .resourceExhausted: status = 429
        case .unavailable: status = code == nil ? 0 : 507
        case .failedPrecondition: status = 503
        case .outOfRange: status = 410
        case .unauthenticated: status = 401
        case .permissionDenied: status = 403
        case .deadlineExceeded: status = 0
        default: status = 500
        }
        let retryAfter = error.metadata[stringValues: "retry-after"].first { _ in true }.flatMap { Int($0) }.map { Duration.seconds($0) }
        self.init(
            status: status,
            code: code ?? (error.code == .deadlineExceeded ? "timeout" : status == 0 ? "unreachable" : "internal"),
            message: error.message,
            field: field,
            retryAfter: retryAfter
        )
    }
}
