import CustodyCore
import CustodyLog
import HTTPTypes
import Hummingbird
import Logging
import W3CTraceContext

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Gives every request its trace (docs/api.md "Tracing of requests") and echoes it: the trace id is
/// `x-trace-id` when valid, else the trace id of a valid `traceparent`, else a new UUID; invalid
/// headers are ignored, never an error. Every response, errors included, carries `x-trace-id`.
///
/// This middleware only decides the trace; the spans are appended by the core operations
/// (`request_received` with their events) and by ``TracedRoute`` (`response_sent` / `error`), so
/// that a request rejected as invalid appends nothing.
public struct TraceMiddleware: RouterMiddleware {
    public typealias Context = CustodyRequestContext

    public init() {}

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        context.traceId = Self.traceId(of: request.headers)
        context.receivedAt = LogTime.now()
        context.started = .now
        var response: Response
        do {
            response = try await next(request, context)
        } catch {
            let answer = APIError(converting: error)
            if answer.status == .internalServerError {
                // The one log line of a failure the client sees only as `internal`.
                context.logger.error(
                    "the server failed to answer",
                    metadata: [
                        "trace_id": "\(context.traceId)", "path": "\(request.uri.path)", "message": "\(answer.message)",
                        "cause": "\(answer.cause.map { String(describing: $0) } ?? "-")",
                    ]
                )
            }
            response = try answer.response(from: request, context: context)
        }
        response.headers[.traceId] = context.traceId
        return response
    }

    /// The trace id of a request with these headers.
    static func traceId(of headers: HTTPFields) -> String {
        traceId(xTraceId: headers[.traceId], traceparent: headers[.traceparent])
    }

    /// docs/api.md "Tracing of requests" (HTTP headers and RPC metadata alike): `x-trace-id` if valid,
    /// else a valid `traceparent`'s trace id, else a new UUID; invalid values are ignored.
    static func traceId(xTraceId: String?, traceparent: String?) -> String {
        if let value = xTraceId, TraceIdentifier.isValid(value) { return value }
        if let parent = traceparent, let context = try? TraceContext(traceParentHeaderValue: parent) {
            return context.traceID.description
        }
        return UUID().uuidString.lowercased()
    }
}

extension HTTPField.Name {
    static let traceId = HTTPField.Name("x-trace-id")!
    static let traceparent = HTTPField.Name("traceparent")!
}
