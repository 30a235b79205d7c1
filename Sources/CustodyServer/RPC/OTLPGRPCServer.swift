import CustodyClient
import CustodyCore
import GRPCCore
import GRPCNIOTransportHTTP2
import Logging
import ServiceLifecycle

/// OTLP/gRPC on its own port (`custody serve --otlp-grpc-port`, default 4317; docs/api.md
/// "OTLP/gRPC"), as a `Service` of the server's group: plaintext HTTP/2, gzip and deflate
/// accepted, messages up to the OTLP limit once decompressed, bearer tokens with the `ingest`
/// role, and each call recorded in its trace as RPC calls are.
///
/// The size limit: grpc-swift's transport ends a stream whose message is over its own limit with
/// a reset (the client sees UNAVAILABLE, which exporters retry), not with a status. So the
/// transport's limit is twice the OTLP limit — it bounds what a compressed message may inflate
/// to — and ``OTLPTraceService`` refuses a message over the OTLP limit itself, with
/// RESOURCE_EXHAUSTED and a message saying so (no `RetryInfo`: exporters do not retry it).
public struct OTLPGRPCServer: Service {
    public static let defaultPort = 4317

    let service: GRPCServerService
    let logger: Logger

    public init(
        runtime: CoreRuntime,
        host: String = "127.0.0.1",
        port: Int = OTLPGRPCServer.defaultPort,
        limits: ServerLimits = ServerLimits(),
        tokens: [String: AccessRole] = [:],
        metrics: ServerMetrics? = nil,
        gate: IngestGate? = nil,
        logger: Logger = Logger(label: "custody.otlp-grpc"),
        onListening: @escaping @Sendable (Int) async -> Void = { _ in }
    ) throws {
        try ListenerExposure.check(host: host, tokens: tokens)
        var config = HTTP2ServerTransport.Posix.Config.defaults
        config.rpc.maxRequestPayloadSize = 2 * limits.maximumOTLPBytes
        config.compression.enabledAlgorithms = [.gzip, .deflate]
        // An export is tens of KiB to MiBs: HTTP/2's default 64 KiB window would hold every one
        // of them until the client had been told to send more (a round trip per export).
        config.http2.targetWindowSize = 8 << 20
        config.http2.maxFrameSize = 1 << 20
        service = GRPCServerService(
            host: host,
            port: port,
            config: config,
            services: [
                OTLPTraceService(
                    runtime: runtime,
                    maximumBytes: limits.maximumOTLPBytes,
                    gate: gate ?? IngestGate(limit: limits.maximumConcurrentIngest),
                    metrics: metrics
                )
            ],
            interceptors: [RPCBearerTokenInterceptor(tokens: BearerTokenMiddleware(tokens: tokens)), RPCTraceInterceptor(runtime: runtime)],
            onListening: onListening
        )
        self.logger = logger
    }

    public func run() async throws {
        try await service.run()
        logger.info("the OTLP/gRPC server has stopped")
    }
}
