import CustodyCore
import CustodyOTLP
import HTTPTypes
import Hummingbird
import NIOCore
import SwiftProtobuf

/// `POST /v1/traces` (API.md "OTLP/HTTP"): an OTLP export request in protobuf, mapped to spans
/// and exported (``SpanExport``); the answer is an `ExportTraceServiceResponse` whose
/// `partial_success` counts the spans that could not be taken.
///
/// Not yet: the OTLP JSON encoding and gzip bodies (answered 415), and errors in
/// `google.rpc.Status` form (errors use the API's JSON envelope).
struct OTLPRoutes {
    let runtime: CoreRuntime
    let limits: ServerLimits
    let gate: IngestGate

    static let protobuf = "application/x-protobuf"

    func register(on router: Router<CustodyRequestContext>) {
        router.traced("/v1/traces", method: .post, runtime: runtime) { request, _, trace in
            let mediaType = request.headers[.contentType].map { String($0.split(separator: ";").first ?? "").lowercased() } ?? ""
            guard mediaType == Self.protobuf else {
                throw APIError(
                    status: .unsupportedMediaType,
                    code: "unsupported_media_type",
                    message: "OTLP/HTTP takes application/x-protobuf here"
                )
            }
            if let encoding = request.headers[.contentEncoding], encoding.lowercased() != "identity" {
                throw APIError(
                    status: .unsupportedMediaType,
                    code: "unsupported_media_type",
                    message: "Content-Encoding \(encoding) is not taken yet"
                )
            }
            return try await gate.admit {
                let body: ByteBuffer
                do {
                    body = try await request.body.collect(upTo: limits.maximumOTLPBytes)
                } catch {
                    throw APIError(CoreError(.payloadTooLarge, "the export is over \(limits.maximumOTLPBytes) bytes"))
                }
                let export: OTLPSpanMapping.Request
                do {
                    export = try body.withUnsafeReadableBytes { try OTLPSpanMapping.Request(serializedBytes: $0) }
                } catch {
                    throw APIError.invalidJSON("the body is not a valid ExportTraceServiceRequest")
                }
                let outcome = try await runtime.spanExport.export(OTLPSpanMapping.spans(of: export), request: trace)
                var response = Opentelemetry_Proto_Collector_Trace_V1_ExportTraceServiceResponse()
                if outcome.rejected > 0 {
                    response.partialSuccess.rejectedSpans = Int64(outcome.rejected)
                    response.partialSuccess.errorMessage = outcome.firstError ?? ""
                }
                let bytes: [UInt8] = try response.serializedBytes()
                return Response(status: .ok, headers: [.contentType: Self.protobuf], body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
            }
        }
    }
}
