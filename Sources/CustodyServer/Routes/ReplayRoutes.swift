import CustodyCore
import Hummingbird

/// TraceReplay over HTTP (docs/api.md "Replay"): decode → ``TraceReplay/replayTrace(_:mode:speed:request:)``
/// → encode. The answer comes when the replay is complete.
struct ReplayRoutes {
    let runtime: CoreRuntime
    let limits: ServerLimits

    func register(on router: Router<CustodyRequestContext>) {
        let replay = runtime.replay
        router.traced("/api/traces/replay/{trace_id}", method: .post, runtime: runtime) { request, context, trace in
            let traceId = try context.pathValue("trace_id")
            let body = try await JSONBody.collect(request, limits: limits)
            let fields = body.readableBytes == 0 ? ReplayBody() : try JSONBody.decode(ReplayBody.self, from: body, limits: limits)
            let mode = try ReplayMode(parsing: fields.mode)
            // The whole request is read: a replay at the original pace may take longer than the
            // deadline that guards against slow clients.
            context.allowSlowAnswer()
            let result = try await replay.replayTrace(traceId, mode: mode, speed: fields.speed ?? 0, request: trace)
            return APIEnvelope.written(result.jsonValue, trace: trace)
        }
    }
}
