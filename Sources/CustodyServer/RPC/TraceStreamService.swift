import CustodyCore
import CustodyRPC
import GRPCCore
import ServiceLifecycle

/// `TraceStream.Live` over gRPC: the WebSocket live stream's semantics from the same hub — the
/// filters, `since_seq` catch-up from the log then live spans with no gap and no duplicate, and
/// `lagged` with the count when this consumer fell behind (its buffer is bounded; ingest and the
/// other consumers never wait for it).
struct TraceStreamService: Custody_V1_TraceStream.SimpleServiceProtocol {
    let runtime: CoreRuntime
    let bufferSize: Int

    func live(request: Custody_V1_LiveRequest, response: RPCWriter<Custody_V1_LiveMessage>, context: ServerContext) async throws {
        let filter = LiveFilter(
            sources: Set(request.source.filter { !$0.isEmpty }),
            stages: Set(request.stage.filter { !$0.isEmpty }),
            operations: Set(request.operation.filter { !$0.isEmpty }),
            traceIds: Set(request.traceID.filter { !$0.isEmpty })
        )
        let session = await LiveSession(hub: runtime.hub, filter: filter, bufferSize: bufferSize)
        // The stream ends when the consumer goes (the RPC is cancelled) or the server shuts down
        // gracefully: either ends the session, which ends its run.
        try await withRPCCancellationHandler {
            try await withGracefulShutdownHandler {
                try await session.run(since: request.hasSinceSeq ? request.sinceSeq : nil, filter: filter) { item in
                    var message = Custody_V1_LiveMessage()
                    switch item {
                    case .span(let delivery):
                        message.trace = try ProtobufJSON.message(Custody_V1_Span.self, from: delivery.record.jsonValue)
                    case .frame(let frame):
                        // This stream never asks for frames; were it to get one, one message a span.
                        for record in frame.records {
                            message.trace = try ProtobufJSON.message(Custody_V1_Span.self, from: record.jsonValue)
                            try await response.write(message)
                        }
                        return
                    case .lagged(let dropped):
                        message.lagged.dropped = UInt64(dropped)
                    }
                    try await response.write(message)
                }
            } onGracefulShutdown: {
                session.end()
            }
        } onCancelRPC: {
            session.end()
        }
    }
}
