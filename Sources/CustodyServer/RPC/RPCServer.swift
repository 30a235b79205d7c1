import CustodyClient
import CustodyCore
import GRPCCore
import GRPCNIOTransportHTTP2
import Logging
import ServiceLifecycle

/// Where the gRPC server listens (`custody serve --rpc-port`, default 8788; the same bind rules as
/// HTTP: loopback unless bearer tokens are set).
public struct RPCConfiguration: Sendable {
    public var host = "127.0.0.1"
    public var port = 8788

    public init(host: String = "127.0.0.1", port: Int = 8788) {
        self.host = host
        self.port = port
    }
}

/// The RPC services of schema/custody.proto over gRPC (HTTP/2, plaintext), as a `Service` of
/// the server's group: on graceful shutdown it stops taking calls and lets those in flight finish
/// (before the runtime closes the log, which is shut down after it).
public struct RPCServer: Service {
    let service: GRPCServerService
    let logger: Logger

    public init(
        runtime: CoreRuntime,
        configuration: RPCConfiguration,
        limits: ServerLimits = ServerLimits(),
        tokens: [String: AccessRole] = [:],
        metrics: ServerMetrics? = nil,
        gate: IngestGate? = nil,
        logger: Logger = Logger(label: "custody.rpc"),
        onListening: @escaping @Sendable (Int) async -> Void = { _ in }
    ) throws {
        try ListenerExposure.check(host: configuration.host, tokens: tokens)
        var config = HTTP2ServerTransport.Posix.Config.defaults
        // A request message may be as large as an HTTP body.
        config.rpc.maxRequestPayloadSize = limits.maximumBodyBytes
        service = GRPCServerService(
            host: configuration.host,
            port: configuration.port,
            config: config,
            services: Self.services(
                runtime: runtime,
                limits: limits,
                gate: gate ?? IngestGate(limit: limits.maximumConcurrentIngest),
                metrics: metrics
            ),
            // Authentication first: a refused call is not traced.
            interceptors: [
                RPCBearerTokenInterceptor(tokens: BearerTokenMiddleware(tokens: tokens)), RPCMinimumSeqInterceptor(runtime: runtime),
                RPCTraceInterceptor(runtime: runtime),
            ],
            onListening: onListening
        )
        self.logger = logger
    }

    static func services(runtime: CoreRuntime, limits: ServerLimits, gate: IngestGate, metrics: ServerMetrics?) -> [any RegistrableRPCService] {
        [
            TaskOpsService(runtime: runtime),
            DeliveryOpsService(runtime: runtime),
            GitHubOpsService(runtime: runtime),
            LogOpsService(runtime: runtime, limits: limits, gate: gate, metrics: metrics),
            TraceReplayService(runtime: runtime),
            TraceStreamService(runtime: runtime, bufferSize: limits.liveClientBuffer),
        ]
    }

    public func run() async throws {
        try await service.run()
        logger.info("the RPC server has stopped")
    }
}
