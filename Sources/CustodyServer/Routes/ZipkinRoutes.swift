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
        let encoding = request.headers[.contentEncoding]?.lowercased() ?? "identity"
        guard encoding == "identity" || encoding == "gzip" else {
            throw APIError(
                status: .unsupportedMediaType,
                code: "unsupported_media_type",
                message: "Content-Encoding \(encoding) is not taken: gzip or none"
            )
        }
        return try await gate.admit {
            var body = try await JSONBody.collect(request, limits: limits)
            let received = body.readableBytes
            if encoding == "gzip" {
                do {
                    body = try GzipBody.inflate(body, limit: limits.maximumBodyBytes)
                } catch GzipBody.Failure.tooLarge {
                    throw APIError(CoreError(.payloadTooLarge, "the body is over \(limits.maximumBodyBytes) bytes once decompressed"))
                } catch {
                    throw APIError.invalidJSON("the gzip body is corrupt")
                }
            }
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
