import CustodyCore
import GRPCCore

/// The RPC side of ``MinimumSeqMiddleware``: `min_seq` metadata makes the call wait until this
/// node's projections hold every event up to that seq.
struct RPCMinimumSeqInterceptor: ServerInterceptor {
    let runtime: CoreRuntime

    func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingServerRequest<Input>,
        context: ServerContext,
        next: @Sendable (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
    ) async throws -> StreamingServerResponse<Output> {
        if let value = request.metadata[stringValues: "min_seq"].first(where: { _ in true }) {
            do {
                try await runtime.awaitApplied(minimumSeq: try CoreRuntime.minimumSeq(parsing: value))
            } catch {
                throw RPCErrorMapping.rpcError(error)
            }
        }
        return try await next(request, context)
    }
}
