import CustodyRPC
import GRPCCore

/// The RPC side of ``BearerTokenMiddleware``: with tokens configured, every call needs
/// `authorization: Bearer <token>` metadata with a role high enough — `ingest` for
/// `LogOps/recordLog` and OTLP's `TraceService/Export`, `operator` for everything else — or it fails UNAUTHENTICATED (no or an
/// unknown token) or PERMISSION_DENIED (a role too low), before any work. Tokens are compared in
/// constant time and never logged or echoed.
struct RPCBearerTokenInterceptor: ServerInterceptor {
    let tokens: BearerTokenMiddleware

    /// The methods a token with the `ingest` role may call.
    static let ingestMethods: Set<MethodDescriptor> = [
        Custody_V1_LogOps.Method.recordLog.descriptor,
        OTLPTraceService.export,
    ]

    func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingServerRequest<Input>,
        context: ServerContext,
        next: @Sendable (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
    ) async throws -> StreamingServerResponse<Output> {
        guard !tokens.tokens.isEmpty else { return try await next(request, context) }
        let presented = request.metadata[stringValues: "authorization"].first { _ in true }.flatMap(BearerTokenMiddleware.bearerToken)
        guard let presented, let role = tokens.role(of: presented) else {
            throw RPCError(
                code: .unauthenticated,
                message: "this server needs a bearer token (authorization: Bearer …)",
                metadata: [RPCErrorMapping.codeKey: "unauthorized"]
            )
        }
        let needed: AccessRole = Self.ingestMethods.contains(context.descriptor) ? .ingest : .operator
        guard role >= needed else {
            throw RPCError(
                code: .permissionDenied,
                message: "this token's role cannot do this (it needs \(needed))",
                metadata: [RPCErrorMapping.codeKey: "forbidden"]
            )
        }
        return try await next(request, context)
    }
}
