import GRPCCore
import GRPCNIOTransportHTTP2
import ServiceLifecycle

/// A grpc-swift server on plaintext HTTP/2 as a swift-service-lifecycle `Service`: it serves
/// until graceful shutdown, then stops taking calls and lets those in flight finish. Custody's
/// RPC server and a worker's SimOps server are each one of these.
public struct GRPCServerService: Service {
    let server: GRPCServer<HTTP2ServerTransport.Posix>
    let transport: HTTP2ServerTransport.Posix
    let onListening: @Sendable (Int) async -> Void

    /// Listens on `host:port` (0: a free port, told to `onListening` once bound).
    public init(
        host: String,
        port: Int,
        config: HTTP2ServerTransport.Posix.Config = .defaults,
        services: [any RegistrableRPCService],
        interceptors: [any ServerInterceptor] = [],
        onListening: @escaping @Sendable (Int) async -> Void = { _ in }
    ) {
        let address: GRPCNIOTransportCore.SocketAddress =
            host.contains(":")
            ? .ipv6(host: host, port: port)
            : .ipv4(host: host == "localhost" ? "127.0.0.1" : host, port: port)
        transport = HTTP2ServerTransport.Posix(address: address, transportSecurity: .plaintext, config: config)
        server = GRPCServer(transport: transport, services: services, interceptors: interceptors)
        self.onListening = onListening
    }

    public func run() async throws {
        let server = server
        let transport = transport
        let onListening = onListening
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask {
                try await withGracefulShutdownHandler {
                    try await server.serve()
                } onGracefulShutdown: {
                    server.beginGracefulShutdown()
                }
            }
            group.addTask {
                let address = try await transport.listeningAddress
                await onListening(address.ipv4?.port ?? address.ipv6?.port ?? 0)
            }
        }
    }
}
