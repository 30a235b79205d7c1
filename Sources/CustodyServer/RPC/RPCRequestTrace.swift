import CustodyCore
import CustodyLog
import GRPCCore
import Logging

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The RPC call being served, for the core operation a method calls: set by
/// ``RPCTraceInterceptor`` around the method (a task local, since grpc-swift's simple service
/// methods see only the message and a context).
enum RPCRequestTrace {
    @TaskLocal static var current: RequestTrace?

    /// The current call's trace; a method outside the interceptor gets a trace of its own.
    static var request: RequestTrace {
        current ?? RequestTrace(traceId: UUID().uuidString.lowercased(), operation: "rpc")
    }

    /// The trace a call's metadata names, by the HTTP rule (``TraceMiddleware``).
    static func traceId(from metadata: Metadata) -> String {
        TraceMiddleware.traceId(
            xTraceId: metadata[stringValues: "x-trace-id"].first { _ in true },
            traceparent: metadata[stringValues: "traceparent"].first { _ in true }
        )
    }
}

/// Does for RPC what the trace middleware and `Router.traced` do for HTTP: the call's trace id
/// from `x-trace-id` / `traceparent` metadata, echoed as `x-trace-id` response metadata; the
/// call's `request_received` span appended with the operation's own events, then `response_sent`
/// (details.status: the gRPC status code, 0) or, for a valid call about something missing or
/// conflicting, an `error` span. Calls that only read traces (getTrace, criticalPath, TraceStream.Live) are not
/// recorded (docs/api.md: no feedback loop). Every thrown error leaves as an ``RPCError`` mapped by
/// ``RPCErrorMapping``.
struct RPCTraceInterceptor: ServerInterceptor {
    let runtime: CoreRuntime
    /// Methods whose calls are not recorded in their trace.
    static let untraced: Set<String> = ["getTrace", "criticalPath", "Live"]

    func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingServerRequest<Input>,
        context: ServerContext,
        next: @Sendable (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
    ) async throws -> StreamingServerResponse<Output> {
        let traceId = RPCRequestTrace.traceId(from: request.metadata)
        let method = context.descriptor.method
        let recorded = !Self.untraced.contains(method)
        let trace = RequestTrace(
            traceId: traceId,
            operation: "\(context.descriptor.service.fullyQualifiedService)/\(method)",
            receivedAt: recorded ? LogTime.now() : nil
        )
        let runtime = runtime
        let response: StreamingServerResponse<Output>
        do {
            response = try await RPCRequestTrace.$current.withValue(trace) { try await next(request, context) }
        } catch {
            let answer = RPCErrorMapping.rpcError(error)
            if answer.code == .internalError {
                // The one log line of a failure the caller sees only as INTERNAL.
                let cause: (any Error)? = (error as? CoreError)?.cause ?? (error is CoreError || error is RPCError ? nil : error)
                runtime.logger.error(
                    "the server failed to answer",
                    metadata: ["trace_id": "\(traceId)", "method": "\(method)", "cause": "\(cause.map { String(describing: $0) } ?? "-")"]
                )
            }
            if recorded, let coreError = RPCErrorMapping.tracedCoreError(error) {
                await runtime.context.recordResponse(trace, status: Int(RPCErrorMapping.rpcError(error).code.rawValue), error: coreError)
            }
            throw RPCErrorMapping.rpcError(error)
        }
        switch response.accepted {
        case .success(var contents):
            contents.metadata.replaceOrAddString(traceId, forKey: "x-trace-id")
            // The write's receipt (docs/api.md, "Custody proofs"), as HTTP's x-custody-receipt.
            if let receipt = trace.receipt { contents.metadata.replaceOrAddString(receipt.description, forKey: "x-custody-receipt") }
            let producer = contents.producer
            contents.producer = { writer in
                do {
                    let trailers = try await producer(writer)
                    if recorded { runtime.context.responses.record(trace, status: 0) }
                    return trailers
                } catch {
                    throw RPCErrorMapping.rpcError(error)
                }
            }
            return StreamingServerResponse(accepted: .success(contents))
        case .failure(var error):
            error.metadata.replaceOrAddString(traceId, forKey: "x-trace-id")
            return StreamingServerResponse(accepted: .failure(error))
        }
    }
}
