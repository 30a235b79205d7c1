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
        let hub = runtime.hub
        let subscription = await hub.subscribe(filter: filter, bufferSize: bufferSize)
        defer { Task { await hub.unsubscribe(subscription.id) } }
        let send = { @Sendable (record: SpanRecord) async throws in
            var message = Custody_V1_LiveMessage()
            message.trace = try ProtobufJSON.message(Custody_V1_Span.self, from: record.jsonValue)
            try await response.write(message)
        }
        // The stream ends when the consumer goes (the RPC is cancelled) or the server shuts down
        // gracefully: either ends the subscription, which ends the loop below.
        let end: @Sendable () -> Void = { Task { await hub.unsubscribe(subscription.id) } }
        try await withRPCCancellationHandler {
            try await withGracefulShutdownHandler {
                if request.hasSinceSeq, request.sinceSeq < subscription.startsAfter {
                    try await hub.catchUp(from: request.sinceSeq, through: subscription.startsAfter, filter: filter) { delivery in
                        try await send(delivery.record)
                    }
                }
                for await message in subscription.messages {
                    try Task.checkCancellation()
                    switch message {
                    case .span(let delivery):
                        try await send(delivery.record)
                    case .lagged(let dropped):
                        var notice = Custody_V1_LiveMessage()
                        notice.lagged.dropped = UInt64(dropped)
                        try await response.write(notice)
                    case .resumed(let after, let through, let filter):
                        try await hub.catchUp(from: after, through: through, filter: filter) { delivery in try await send(delivery.record) }
                    }
                }
            } onGracefulShutdown: {
                end()
            }
        } onCancelRPC: {
            end()
        }
    }
}
