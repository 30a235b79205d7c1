import CustodyCore
import Hummingbird
import Logging
import ServiceLifecycle

extension CustodyApplication {
    /// OTLP's default port for OTLP/HTTP (`custody serve --otlp-http-port`).
    public static let defaultOTLPHTTPPort = 4318

    /// The router of the OTLP/HTTP port: `POST /v1/traces` alone (405 for its other methods, 404
    /// for any other path), behind the API's trace, metrics and bearer-token middleware.
    public static func otlpRouter(
        runtime: CoreRuntime,
        metrics: ServerMetrics,
        limits: ServerLimits,
        tokens: [String: AccessRole],
        gate: IngestGate
    ) -> Router<CustodyRequestContext> {
        let router = Router(context: CustodyRequestContext.self)
        router.middlewares.add(TraceMiddleware())
        router.middlewares.add(RequestMetricsMiddleware(metrics: metrics))
        router.middlewares.add(BearerTokenMiddleware(tokens: tokens))
        OTLPRoutes(runtime: runtime, limits: limits, gate: gate, metrics: metrics).register(on: router)
        answerOtherMethods(on: router)
        return router
    }

    /// OTLP/HTTP on its own port (docs/api.md "OTLP/gRPC": the OTLP defaults work unconfigured),
    /// as a service to run beside the application: the same route, limits, ingest gate and
    /// connection handling (head limits, deadlines) as the API's port.
    public static func otlpHTTPServer(
        runtime: CoreRuntime,
        host: String,
        port: Int = defaultOTLPHTTPPort,
        metrics: ServerMetrics,
        limits: ServerLimits = ServerLimits(),
        tokens: [String: AccessRole] = [:],
        gate: IngestGate,
        logger: Logger = Logger(label: "custody.otlp-http"),
        onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) throws -> some Service {
        try ListenerExposure.check(host: host, tokens: tokens)
        let router = otlpRouter(runtime: runtime, metrics: metrics, limits: limits, tokens: tokens, gate: gate)
        return Application(
            router: router,
            server: serverBuilder(router: router, limits: limits),
            configuration: .init(address: .hostname(host, port: port), serverName: nil),
            onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? 0) },
            logger: logger
        )
    }
}
