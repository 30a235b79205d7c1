import CustodyCore
import CustodyLog
import Hummingbird
import NIOCore
import Prometheus

/// Health, readiness, metrics and the admin API (docs/api.md "Operations"). Not traced.
struct OperationsRoutes {
    let runtime: CoreRuntime
    let metrics: ServerMetrics
    let gate: IngestGate
    let rebuild: AdminRebuild

    /// Ready means the projections are within this of the log's head.
    static let readyLagSeconds = 1.0

    func register(on router: Router<CustodyRequestContext>) {
        router.get("/healthz") { _, _ in
            APIEnvelope.ok(.object(["status": .string("ok")]))
        }
        router.get("/readyz") { _, _ in
            let lag = await runtime.projector.lag()
            let failures = await runtime.projector.failures
            let status = await runtime.log.status()
            let details: JSONValue = .object([
                "lag_events": .integer(Int64(lag.events)), "lag_seconds": .number(lag.seconds),
                "log_failure": status.failure.map(JSONValue.string) ?? .null, "projection_failures": .integer(Int64(failures)),
            ])
            guard status.failure == nil, failures == 0, lag.seconds <= Self.readyLagSeconds else {
                throw APIError(
                    status: .serviceUnavailable,
                    code: "not_ready",
                    message: status.failure != nil
                        ? "the log cannot be written"
                        : failures > 0 ? "the projections cannot be written" : "the projections are \(lag.events) events behind the log",
                    details: details
                )
            }
            return APIEnvelope.ok(.object(["status": .string("ready"), "lag": details]))
        }
        router.get("/metrics") { _, _ in
            let statistics = await ServerStatistics.collect(runtime: runtime, metrics: metrics, gate: gate, rebuild: rebuild)
            statistics.export(to: metrics)
            var bytes: [UInt8] = []
            metrics.registry.emit(into: &bytes)
            return Response(
                status: .ok,
                headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(bytes: bytes))
            )
        }
        router.post("/api/admin/rebuild") { _, _ in
            guard rebuild.start(runtime: runtime) else {
                throw APIError(CoreError(.conflict, "a rebuild is already running; see /api/admin/stats"))
            }
            return APIEnvelope.ok(.object(["rebuild": rebuild.status]), status: .accepted)
        }
        router.get("/api/admin/stats") { _, _ in
            APIEnvelope.ok(await ServerStatistics.collect(runtime: runtime, metrics: metrics, gate: gate, rebuild: rebuild).jsonValue)
        }
    }
}
