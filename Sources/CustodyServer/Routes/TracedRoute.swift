import CustodyCore
import HTTPTypes
import Hummingbird

extension RequestTrace {
    /// The request being answered, for the core operations.
    init(_ context: CustodyRequestContext, operation: String) {
        self.init(traceId: context.traceId, operation: operation, receivedAt: context.receivedAt, started: context.started)
    }
}

extension HTTPField.Name {
    /// `x-custody-receipt: SEQ:HEX` on the answer to every write (docs/api.md, "Custody proofs").
    static let custodyReceipt = Self("x-custody-receipt")!
}

extension Router where Context == CustodyRequestContext {
    /// Registers a route that is recorded in its request's trace (docs/api.md "Tracing of requests").
    /// The handler gets the request's ``RequestTrace`` (operation `METHOD /template`) for the core
    /// operation, which appends `request_received` with its own events; this closes the request
    /// with `response_sent`, or with `error` for a valid request about something that does not
    /// exist or that conflicts (appended before the answer; `response_sent` is appended as the
    /// answer goes out, best effort). A request rejected as invalid (400, 405, 413, 415, 422) or refused
    /// (429, 507) appends nothing.
    @discardableResult
    func traced(
        _ path: RouterPath,
        method: HTTPRequest.Method,
        runtime: CoreRuntime,
        handler: @escaping @Sendable (Request, CustodyRequestContext, RequestTrace) async throws -> Response
    ) -> Self {
        let operation = "\(method.rawValue) \(path)"
        return on(path, method: method) { request, context in
            let trace = RequestTrace(context, operation: operation)
            do {
                var response = try await handler(request, context, trace)
                if let receipt = trace.receipt { response.headers[.custodyReceipt] = receipt.description }
                // The closing span is appended without holding the answer until it is durable: the
                // operation's own events already are, and waiting for a second fsync would double
                // every request's latency (measured: 6,800 → see docs/benchmarks.md). The
                // runtime's ResponseRecorder appends it.
                runtime.context.responses.record(trace, status: Int(response.status.code))
                return response
            } catch {
                let answer = APIError(converting: error)
                if let coreError = error as? CoreError ?? (error as? APIError)?.coreError, coreError.closesRequestWithErrorSpan {
                    await runtime.context.recordResponse(trace, status: Int(answer.status.code), error: coreError)
                }
                throw answer
            }
        }
    }
}
