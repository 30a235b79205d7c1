import CustodyCore
import CustodyOTLP
import GRPCCore
import GRPCProtobuf
import NIOCore

/// OTLP's `opentelemetry.proto.collector.trace.v1.TraceService/Export` over gRPC (docs/api.md
/// "OTLP/gRPC"): decode → ``SpanExport`` (the core path OTLP/HTTP takes) → encode.
///
/// The request message is decoded by ``OTLPProtobufDecoder`` straight from the bytes grpc-swift
/// received (its deserializer), never into SwiftProtobuf's messages; bytes it refuses end the
/// call with INVALID_ARGUMENT and append nothing. Spans that cannot be taken are counted in
/// `partial_success`; spans already taken are acknowledged and not appended again; an overloaded
/// server answers RESOURCE_EXHAUSTED with `google.rpc.RetryInfo` (``RPCErrorMapping``).
struct OTLPTraceService: RegistrableRPCService {
    typealias Response = Opentelemetry_Proto_Collector_Trace_V1_ExportTraceServiceResponse

    static let export = MethodDescriptor(fullyQualifiedService: "opentelemetry.proto.collector.trace.v1.TraceService", method: "Export")

    let runtime: CoreRuntime
    /// The OTLP size limit, of the message once decompressed.
    let maximumBytes: Int
    let gate: IngestGate
    let metrics: ServerMetrics?

    /// An export request as the deserializer leaves it: its spans, and its size for the metrics.
    struct Export: Sendable {
        var spans: [SpanInput]
        var bytes: Int
    }

    /// Decodes the message in place, as it arrived.
    struct ExportDeserializer: MessageDeserializer {
        let maximumBytes: Int

        func deserialize<Bytes: GRPCContiguousBytes>(_ serializedMessageBytes: Bytes) throws -> Export {
            guard serializedMessageBytes.count <= maximumBytes else {
                throw RPCError(
                    code: .resourceExhausted,
                    message: "the export is \(serializedMessageBytes.count) bytes (decompressed); the limit is \(maximumBytes)",
                    metadata: [RPCErrorMapping.codeKey: "payload_too_large"]
                )
            }
            let decoded = serializedMessageBytes.withUnsafeBytes { bytes in
                Result { () throws(OTLPDecodingError) in try OTLPProtobufDecoder.spans(from: bytes) }
            }
            switch decoded {
            case .success(let spans):
                return Export(spans: spans, bytes: serializedMessageBytes.count)
            case .failure(let error):
                throw RPCError(
                    code: .invalidArgument,
                    message: "the message is not a valid ExportTraceServiceRequest: \(error)",
                    metadata: [RPCErrorMapping.codeKey: "invalid_json"]
                )
            }
        }
    }

    func registerMethods<Transport: ServerTransport>(with router: inout RPCRouter<Transport>) {
        router.registerHandler(
            forMethod: Self.export,
            deserializer: ExportDeserializer(maximumBytes: maximumBytes),
            serializer: ProtobufSerializer<Response>()
        ) { request, _ in
            // Admitted before the message is read: an overloaded server does not decode it.
            try await gate.admit {
                let export = try await ServerRequest(stream: request)
                return StreamingServerResponse(single: ServerResponse(message: try await self.export(export.message)))
            }
        }
    }

    func export(_ export: Export) async throws -> Response {
        let outcome = try await runtime.spanExport.export(export.spans, request: RPCRequestTrace.request)
        metrics?.ingested(events: outcome.accepted, bytes: export.bytes)
        var response = Response()
        if outcome.rejected > 0 {
            response.partialSuccess.rejectedSpans = Int64(outcome.rejected)
            response.partialSuccess.errorMessage = outcome.firstError ?? ""
        }
        return response
    }
}
