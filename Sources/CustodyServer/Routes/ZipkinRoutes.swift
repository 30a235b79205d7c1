import CustodyCore
import HTTPTypes
import Hummingbird
import NIOCore

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// `POST /api/v2/spans` (docs/api.md "Zipkin"): Zipkin v2 JSON, gzip or not, mapped to spans
/// (``ZipkinSpans``) and exported through the core path OTLP takes (``SpanExport``, its dedupe
/// included). 202 with no body on success, as Zipkin answers; the API's envelope for errors. A
/// body with any span that cannot be taken is refused whole.
struct ZipkinRoutes {
    let runtime: CoreRuntime
    let limits: ServerLimits
    let gate: IngestGate
    let metrics: ServerMetrics

    func register(on router: Router<CustodyRequestContext>) {
        router.traced("/api/v2/spans", method: .post, runtime: runtime) { request, _, trace in
            try await export(request, trace: trace)
        }
    }

    func export(_ request: Request, trace: RequestTrace) async throws -> Response {
        let gzip = try GzipBody.isGzip(request)
        return try await gate.admit {
            var body = try await JSONBody.collect(request, limits: limits)
            let received = body.readableBytes
            if gzip { body = try GzipBody.inflateRequestBody(body, limit: limits.maximumBodyBytes) }
            let spans: [SpanInput]
            do {
                try SpanJSONParser.validate(body, maximumDepth: limits.maximumJSONDepth)
                let value = try JSONDecoder().decode(JSONValue.self, from: Data(body.readableBytesView))
                spans = try ZipkinSpans.spans(from: value)
            } catch let error as CoreError {
                throw APIError(error)
            } catch {
                throw APIError.invalidJSON("the body is not JSON")
            }
            let outcome = try await runtime.spanExport.export(spans, request: trace, partial: false)
            metrics.ingested(events: outcome.accepted, bytes: received)
            return Response(status: .accepted)
        }
    }
}
