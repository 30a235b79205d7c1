import CustodyCore
import CustodyLog
import HTTPTypes
import Hummingbird
import HummingbirdCore
import HummingbirdWebSocket
import Logging
import NIOCore
import ServiceLifecycle

/// Where and how the server listens.
public struct ServerConfiguration: Sendable {
    public var host = "127.0.0.1"
    public var port = 8787
    public var limits = ServerLimits()
    /// Bearer tokens and their roles; empty means no authentication, which is allowed only on a
    /// loopback address (``ListenerExposure``).
    public var tokens: [String: AccessRole] = [:]
    /// The cluster this node is part of (`GET /api/admin/cluster`); nil: a node on its own.
    public var cluster: (any ClusterMembership)?

    public init(host: String = "127.0.0.1", port: Int = 8787) {
        self.host = host
        self.port = port
    }
}

/// Builds the HTTP API over a ``CoreRuntime``: the router with every route of docs/api.md, its
/// middleware, and the services that run with it.
public enum CustodyApplication {
    /// How the live hub encodes for WebSocket clients: a span once for every client that takes
    /// one span a frame, a batched frame once for every client with the same filter.
    public static let liveEncoding = LiveEncoding(span: LiveStreamRoute.encode, batch: LiveStreamRoute.encode)

    /// The router: middleware (trace, metrics), every route, and 405 answers for known paths
    /// asked with another method.
    public static func router(
        runtime: CoreRuntime,
        metrics: ServerMetrics = ServerMetrics(),
        limits: ServerLimits = ServerLimits(),
        tokens: [String: AccessRole] = [:],
        gate: IngestGate? = nil,
        cluster: (any ClusterMembership)? = nil
    ) -> Router<CustodyRequestContext> {
        let router = Router(context: CustodyRequestContext.self, options: .autoGenerateHeadEndpoints)
        router.middlewares.add(TraceMiddleware())
        router.middlewares.add(RequestMetricsMiddleware(metrics: metrics))
        // The dashboard's files, for GET paths no route took (after the routes, not before them).
        router.middlewares.add(DashboardFiles.middleware())
        router.middlewares.add(BearerTokenMiddleware(tokens: tokens))
        router.middlewares.add(MinimumSeqMiddleware(runtime: runtime))
        let gate = gate ?? IngestGate(limit: limits.maximumConcurrentIngest)
        LogRoutes(runtime: runtime, limits: limits, gate: gate, metrics: metrics).register(on: router)
        OTLPRoutes(runtime: runtime, limits: limits, gate: gate, metrics: metrics).register(on: router)
        ZipkinRoutes(runtime: runtime, limits: limits, gate: gate, metrics: metrics).register(on: router)
        TaskRoutes(runtime: runtime, limits: limits).register(on: router)
        DeliveryRoutes(runtime: runtime, limits: limits).register(on: router)
        TraceRoutes(runtime: runtime).register(on: router)
        ReplayRoutes(runtime: runtime, limits: limits).register(on: router)
        GitHubRoutes(runtime: runtime, limits: limits).register(on: router)
        ProofRoutes(runtime: runtime).register(on: router)
        LiveStreamRoute(runtime: runtime, bufferSize: limits.liveClientBuffer, pingInterval: limits.livePingInterval).register(on: router)
        OperationsRoutes(runtime: runtime, metrics: metrics, gate: gate, cluster: cluster, limits: limits).register(on: router)
        answerOtherMethods(on: router)
        return router
    }

    /// Every path the router knows answers the methods it does not take with 405 and `Allow`.
    static func answerOtherMethods(on router: Router<CustodyRequestContext>) {
        var methods: [String: (path: RouterPath, methods: [HTTPRequest.Method])] = [:]
        for route in router.routes {
            methods[route.path.description, default: (route.path, [])].methods.append(route.method)
        }
        for (_, entry) in methods {
            let allowed = entry.methods
            let others: [HTTPRequest.Method] =
                [.get, .post, .put, .delete, .patch, .options, .trace, .connect, HTTPRequest.Method("QUERY")!]
                + (allowed.contains(.get) ? [] : [.head])
            for method in others where !allowed.contains(method) {
                router.on(entry.path, method: method) { _, _ -> Response in throw APIError.methodNotAllowed(allowed: allowed) }
            }
        }
    }

    /// The application: the router over HTTP/1.1 with WebSocket upgrades, and the runtime's
    /// following of the log as a service that stops after the server has drained. `rpc` and
    /// `services` (the OTLP listeners) run beside it and are shut down before the runtime; `gate`
    /// bounds the ingest of every listener that shares it.
    public static func application(
        runtime: CoreRuntime,
        configuration: ServerConfiguration = ServerConfiguration(),
        metrics: ServerMetrics = ServerMetrics(),
        logger: Logger = Logger(label: "custody.server"),
        rpc: RPCServer? = nil,
        services: [any Service] = [],
        gate: IngestGate? = nil,
        onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) throws -> some ApplicationProtocol {
        try ListenerExposure.check(host: configuration.host, tokens: configuration.tokens)
        let router = router(
            runtime: runtime,
            metrics: metrics,
            limits: configuration.limits,
            tokens: configuration.tokens,
            gate: gate,
            cluster: configuration.cluster
        )
        let app = Application(
            router: router,
            server: serverBuilder(router: router, limits: configuration.limits),
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: nil),
            // Shut down in reverse: the HTTP server, then the other listeners, then the runtime.
            services: [RuntimeService(runtime: runtime, logger: logger), HeapTrimService(logger: logger)] + (rpc.map { [$0] } ?? [])
                + services,
            onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? 0) },
            logger: logger
        )
        return app
    }
}

extension CustodyApplication {
    /// HTTP/1.1 with WebSocket upgrades on the API's router, each connection fronted by a
    /// ``RequestDeadlineHandler`` (slow clients) and closed when idle.
    static func serverBuilder(router: Router<CustodyRequestContext>, limits: ServerLimits) -> HTTPServerBuilder {
        let webSocketResponder = router.buildResponder()
        let configuration = HTTP1WebSocketUpgradeChannel.Configuration(
            http1: .init(idleTimeout: .seconds(limits.idleTimeoutSeconds), httpDecoderConfiguration: RequestHeadLimits.decoderConfiguration),
            ws: .init(maxFrameSize: 1 << 20, autoPing: .disabled)
        )
        let limit = TimeAmount.nanoseconds(Int64(limits.requestDeadline.inSeconds * 1e9))
        return HTTPServerBuilder { responder in
            DeadlineChildChannel(
                base: HTTP1WebSocketUpgradeChannel(responder: responder, webSocketResponder: webSocketResponder, configuration: configuration),
                limit: limit
            )
        }
    }
}

/// The runtime's derived views following the log, as a service of the server's group: it is shut
/// down after the HTTP server (which stops taking requests and finishes those in flight), then
/// the projections catch up and the log and the database close.
struct RuntimeService: Service {
    let runtime: CoreRuntime
    let logger: Logger

    func run() async throws {
        do {
            try await cancelWhenGracefulShutdown {
                try await runtime.run()
            }
        } catch is CancellationError {
        }
        await runtime.close()
        logger.info("the log and the projections are closed")
    }
}
