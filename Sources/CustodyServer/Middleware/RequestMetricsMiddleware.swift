import Hummingbird

/// Records every answered request in ``ServerMetrics``: latency by method, route template and
/// status class, and the error code of a rejection. Sits inside ``TraceMiddleware``, so errors
/// are seen after they became envelopes.
struct RequestMetricsMiddleware: RouterMiddleware {
    typealias Context = CustodyRequestContext
    let metrics: ServerMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            let response = try await next(request, context)
            metrics.answered(
                method: request.method.rawValue,
                route: context.endpointPath ?? "unmatched",
                status: Int(response.status.code),
                code: nil,
                duration: .now - context.started
            )
            return response
        } catch {
            let answer = APIError(converting: error)
            metrics.answered(
                method: request.method.rawValue,
                route: context.endpointPath ?? "unmatched",
                status: Int(answer.status.code),
                code: answer.code.rawValue,
                duration: .now - context.started
            )
            throw answer
        }
    }
}
