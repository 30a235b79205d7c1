import CustodyCore
import Hummingbird

/// LogOps over HTTP (docs/api.md "Logging"): decode → ``LogOperations/recordLog(_:request:)`` → encode.
struct LogRoutes {
    let runtime: CoreRuntime
    let limits: ServerLimits
    let gate: IngestGate
    let metrics: ServerMetrics

    func register(on router: Router<CustodyRequestContext>) {
        router.traced("/api/logs", method: .post, runtime: runtime) { request, context, trace in
            try await gate.admit {
                let (entries, bytes) = try await JSONBody.logEntries(from: request, limits: limits)
                let recorded = try await runtime.logs.recordLog(entries, request: trace)
                metrics.ingested(events: recorded.accepted, bytes: bytes)
                switch entries {
                case .one:
                    return APIEnvelope.written(.object(["trace_id": .string(recorded.traceIds[0])]), trace: trace)
                case .many:
                    return APIEnvelope.written(
                        .object([
                            "trace_ids": .array(recorded.traceIds.map(JSONValue.string)), "accepted": .integer(Int64(recorded.accepted)),
                            "first_seq": .integer(Int64(recorded.firstSeq)), "last_seq": .integer(Int64(recorded.lastSeq)),
                        ]),
                        trace: trace
                    )
                }
            }
        }
    }
}
