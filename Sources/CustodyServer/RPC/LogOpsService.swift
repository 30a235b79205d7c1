import CustodyCore
import CustodyRPC
import GRPCCore

/// LogOps over gRPC: decode → the core function the HTTP route calls → encode. The entries go
/// through the same parser and validation as `POST /api/logs` (their JSON with proto field names
/// is that route's body), so a span is checked, defaulted and rejected the same way over both.
struct LogOpsService: Custody_V1_LogOps.SimpleServiceProtocol {
    let runtime: CoreRuntime
    let limits: ServerLimits

    func recordLog(request: Custody_V1_RecordLogRequest, context: ServerContext) async throws -> Custody_V1_RecordLogReply {
        let entries = try SpanJSONParser.parseLogBody(try ProtobufJSON.body(request), maximumDepth: limits.maximumJSONDepth)
        let recorded = try await runtime.logs.recordLog(entries, request: RPCRequestTrace.request)
        var reply = Custody_V1_RecordLogReply()
        reply.traceIds = recorded.traceIds
        reply.accepted = UInt32(recorded.accepted)
        reply.firstSeq = recorded.firstSeq
        reply.lastSeq = recorded.lastSeq
        return reply
    }

    func getTrace(request: Custody_V1_GetTraceRequest, context: ServerContext) async throws -> Custody_V1_Trace {
        let (spans, summary) = try await runtime.traces.trace(request.traceID)
        var reply = Custody_V1_Trace()
        reply.traceID = request.traceID
        reply.spans = try spans.map { try ProtobufJSON.message(Custody_V1_Span.self, from: $0.jsonValue) }
        reply.summary = try ProtobufJSON.message(Custody_V1_TraceSummary.self, from: summary.jsonValue)
        return reply
    }
}
