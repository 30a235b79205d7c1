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
    let cluster: (any ClusterMembership)?
    let limits: ServerLimits

    func register(on router: Router<CustodyRequestContext>) {
        router.get("/healthz") { _, _ in
            APIEnvelope.ok(.object(["status": .string("ok")]))
        }
        router.get("/readyz") { _, _ in
            let readiness = await runtime.readiness()
            guard readiness.isReady else {
                throw APIError(status: .serviceUnavailable, code: .notReady, message: readiness.reason ?? "not ready", details: readiness.jsonValue)
            }
            return APIEnvelope.ok(.object(["status": .string("ready"), "lag": readiness.jsonValue]))
        }
        router.get("/metrics") { _, _ in
            let statistics = await ServerStatistics.collect(runtime: runtime, metrics: metrics, gate: gate)
            statistics.export(to: metrics)
            var bytes: [UInt8] = []
            metrics.registry.emit(into: &bytes)
            runtime.spanMetrics.writePrometheus(into: &bytes)
            return Response(
                status: .ok,
                headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(bytes: bytes))
            )
        }
        router.post("/api/admin/rebuild") { _, _ in
            guard runtime.rebuild.start() else {
                throw APIError(CoreError(.conflict, "a rebuild is already running; see /api/admin/stats"))
            }
            return APIEnvelope.ok(.object(["rebuild": runtime.rebuild.status]), status: .accepted)
        }
        router.post("/api/admin/backup") { request, context in
            let body = try await JSONBody.collect(request, limits: limits)
            let fields = try JSONBody.decode(BackupBody.self, from: body, limits: limits)
            guard let directory = fields.to else { throw APIError(CoreError.invalidArgument("to", "is required")) }
            // A path on the server's machine: relative to what, the caller cannot know.
            guard directory.hasPrefix("/") else { throw APIError(CoreError.invalidArgument("to", "must be an absolute path on the server")) }
            // A backup of a large data directory takes longer than the slow-client deadline.
            context.allowSlowAnswer()
            let report = try await runtime.backup(to: directory, includeKey: fields.includeKey ?? false)
            return APIEnvelope.ok(report.jsonValue)
        }
        router.get("/api/admin/cluster") { _, _ in
            if let cluster { return APIEnvelope.ok(await cluster.status()) }
            return APIEnvelope.ok(await runtime.soleNodeStatus())
        }
        router.get("/api/admin/stats") { _, _ in
            APIEnvelope.ok(await ServerStatistics.collect(runtime: runtime, metrics: metrics, gate: gate).jsonValue)
        }
    }
}
