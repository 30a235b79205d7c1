import CustodyCore
import CustodyRPC
import GRPCCore

/// TraceReplay over gRPC: decode → ``TraceReplay/replayTrace(_:mode:speed:request:)`` → encode.
struct TraceReplayService: Custody_V1_TraceReplay.SimpleServiceProtocol {
    let runtime: CoreRuntime

    func replayTrace(request: Custody_V1_ReplayTraceRequest, context: ServerContext) async throws -> Custody_V1_ReplayResult {
        let mode = try ReplayMode(parsing: request.hasMode ? request.mode : nil)
        let result = try await runtime.replay.replayTrace(
            request.traceID,
            mode: mode,
            speed: request.hasSpeed ? request.speed : 0,
            request: RPCRequestTrace.request
        )
        return try ProtobufJSON.message(Custody_V1_ReplayResult.self, from: result.jsonValue)
    }
}
