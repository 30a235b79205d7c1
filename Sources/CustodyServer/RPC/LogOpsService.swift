import CustodyCore
import CustodyRPC
import GRPCCore
import NIOCore
import SwiftProtobuf

/// LogOps over gRPC: decode → the core function the HTTP route calls → encode. Each entry becomes
/// the ``SpanInput`` the HTTP parser would make of it (its `details` as the JSON text of the
/// `Struct`), so a span is checked, defaulted and rejected the same way over both, its errors
/// naming `entries[i].field`.
struct LogOpsService: Custody_V1_LogOps.SimpleServiceProtocol {
    let runtime: CoreRuntime
    let limits: ServerLimits

    func recordLog(request: Custody_V1_RecordLogRequest, context: ServerContext) async throws -> Custody_V1_RecordLogReply {
        let inputs = try request.entries.map { entry in
            var input = SpanInput(
                traceId: entry.hasTraceID ? entry.traceID : nil,
                spanId: entry.hasSpanID ? entry.spanID : nil,
                parentSpanId: entry.hasParentSpanID ? entry.parentSpanID : nil,
                source: entry.hasSource ? entry.source : nil,
                stage: entry.hasStage ? entry.stage : nil,
                operation: entry.hasOperation ? entry.operation : nil,
                taskUUID: entry.hasTaskUuid ? entry.taskUuid : nil,
                durationMs: entry.hasDurationMs ? entry.durationMs : nil,
                timestamp: entry.hasTimestamp ? entry.timestamp : nil
            )
            if entry.hasDetails {
                let bytes: [UInt8] = try entry.details.jsonUTF8Bytes()
                input.detailsText = JSONText(ByteBuffer(bytes: bytes))
            }
            return input
        }
        let recorded = try await runtime.logs.recordLog(.many(inputs), request: RPCRequestTrace.request)
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
