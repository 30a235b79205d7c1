import CustodyCore
import CustodyOTLP
import GRPCCore
import HTTPTypes
import Hummingbird
import NIOCore
import SwiftProtobuf

/// `POST /v1/traces` (docs/api.md "OTLP/HTTP"): an OTLP export request, decoded into spans
/// (protobuf by ``OTLPProtobufDecoder``, JSON through SwiftProtobuf and ``OTLPSpanMapping``) and
/// exported (``SpanExport``, the path OTLP/gRPC takes too); the answer is an `ExportTraceServiceResponse` whose
/// `partial_success` counts the spans that could not be taken.
///
/// Both encodings of the OTLP specification: `application/x-protobuf` and `application/json`
/// (hex ids), `Content-Encoding: gzip` or none; the size limit applies after decompression; the
/// answer is in the request's encoding, errors included: a `google.rpc.Status` with the
/// message, as the OTLP specification asks.
struct OTLPRoutes {
    let runtime: CoreRuntime
    let limits: ServerLimits
    let gate: IngestGate
    let metrics: ServerMetrics

    static let protobuf = "application/x-protobuf"

    func register(on router: Router<CustodyRequestContext>) {
        router.traced("/v1/traces", method: .post, runtime: runtime) { request, _, trace in
            do {
                return try await export(request, trace: trace)
            } catch {
                throw Self.otlpError(
                    APIError(converting: error),
                    json: request.headers[.contentType]?.lowercased().hasPrefix("application/json") == true
                )
            }
        }
    }

    /// An error answered in OTLP's form: the same status and headers, a `google.rpc.Status` body
    /// (protobuf, or JSON for a JSON request).
    static func otlpError(_ error: APIError, json: Bool) -> APIError {
        var status = Google_Rpc_Status()
        status.code = Int32(ErrorStatusTable.grpcCode(error).rawValue)
        status.message = error.message
        var answer = error
        if json {
            answer.customBody = (ByteBuffer(bytes: (try? status.jsonUTF8Bytes()) ?? []), "application/json")
        } else {
            answer.customBody = (ByteBuffer(bytes: (try? status.serializedBytes() as [UInt8]) ?? []), protobuf)
        }
        return answer
    }

    func export(_ request: Request, trace: RequestTrace) async throws -> Response {
        let mediaType = request.headers[.contentType].map { String($0.split(separator: ";").first ?? "").lowercased() } ?? ""
        let isJSON = mediaType == "application/json"
        guard isJSON || mediaType == Self.protobuf else {
            throw APIError(
                status: .unsupportedMediaType,
                code: .unsupportedMediaType,
                message: "OTLP/HTTP takes application/x-protobuf or application/json"
            )
        }
        let gzip = try GzipBody.isGzip(request)
        return try await gate.admit {
            var body: ByteBuffer
            do {
                body = try await request.body.collect(upTo: limits.maximumOTLPBytes)
            } catch {
                throw APIError(CoreError(.payloadTooLarge, "the export is over \(limits.maximumOTLPBytes) bytes"))
            }
            let received = body.readableBytes
            if gzip { body = try GzipBody.inflateRequestBody(body, limit: limits.maximumOTLPBytes) }
            let spans: [SpanInput]
            if isJSON {
                do {
                    spans = OTLPSpanMapping.spans(of: try OTLPJSON.request(from: Array(body.readableBytesView)))
                } catch let error as OTLPJSON.Invalid {
                    throw APIError.invalidJSON(error.message)
                }
            } else {
                // Straight from the bytes, no SwiftProtobuf messages (docs/benchmarks.md P4).
                do {
                    spans = try OTLPProtobufDecoder.spans(from: body)
                } catch {
                    throw APIError.invalidJSON("the body is not a valid ExportTraceServiceRequest: \(error)")
                }
            }
            let outcome = try await runtime.spanExport.export(spans, request: trace)
            metrics.ingested(events: outcome.accepted, bytes: received)
            var response = Opentelemetry_Proto_Collector_Trace_V1_ExportTraceServiceResponse()
            if outcome.rejected > 0 {
                response.partialSuccess.rejectedSpans = Int64(outcome.rejected)
                response.partialSuccess.errorMessage = outcome.firstError ?? ""
            }
            if isJSON {
                return Response(
                    status: .ok,
                    headers: [.contentType: "application/json"],
                    body: .init(byteBuffer: ByteBuffer(bytes: OTLPJSON.encode(response)))
                )
            }
            let bytes: [UInt8] = try response.serializedBytes()
            return Response(status: .ok, headers: [.contentType: Self.protobuf], body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
        }
    }
}
