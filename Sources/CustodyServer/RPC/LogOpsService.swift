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
    /// Bounds the recordLog calls in flight, as the HTTP ingest routes are bounded: over it a call
    /// is refused at once with RESOURCE_EXHAUSTED and when to retry.
    let gate: IngestGate
    /// Counts what is taken (spans, and the request message's bytes), when the server has them.
    let metrics: ServerMetrics?

    func recordLog(request: Custody_V1_RecordLogRequest, context: ServerContext) async throws -> Custody_V1_RecordLogReply {
        try await gate.admit { try await record(request) }
    }

    private func record(_ request: Custody_V1_RecordLogRequest) async throws -> Custody_V1_RecordLogReply {
        let inputs = try request.entries.enumerated().map { position, entry throws(CoreError) in
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
            do throws(CoreError) {
                if entry.hasDetailsJson {
                    guard !entry.hasDetails else { throw CoreError.invalidArgument("details_json", "cannot be set with details") }
                    input.detailsText = try Self.detailsText(entry.detailsJson, maximumDepth: limits.maximumJSONDepth)
                } else if entry.hasDetails {
                    guard let bytes: [UInt8] = try? entry.details.jsonUTF8Bytes() else {
                        throw CoreError.invalidArgument("details", "cannot be written as JSON")
                    }
                    input.detailsText = JSONText(ByteBuffer(bytes: bytes))
                }
            } catch {
                throw error.prefixingField("entries[\(position)]")
            }
            return input
        }
        let recorded = try await runtime.logs.recordLog(.many(inputs), request: RPCRequestTrace.request)
        if let metrics { metrics.ingested(events: recorded.accepted, bytes: (try? request.serializedBytes() as [UInt8])?.count ?? 0) }
        var reply = Custody_V1_RecordLogReply()
        reply.traceIds = recorded.traceIds
        reply.accepted = UInt32(recorded.accepted)
        reply.firstSeq = recorded.firstSeq
        reply.lastSeq = recorded.lastSeq
        return reply
    }

    /// `details_json` as it was sent, once it is known to be one JSON object within the depth
    /// limit (its size is checked with the span, as `details`' is).
    static func detailsText(_ text: String, maximumDepth: Int) throws(CoreError) -> JSONText {
        let bytes = ByteBuffer(string: text)
        do {
            try SpanJSONParser.validate(bytes, maximumDepth: maximumDepth)
        } catch {
            throw CoreError.invalidArgument("details_json", "is not valid JSON: \(error.message)")
        }
        guard
            text.utf8.first(where: { $0 != UInt8(ascii: " ") && $0 != UInt8(ascii: "\n") && $0 != UInt8(ascii: "\t") && $0 != UInt8(ascii: "\r") })
                == UInt8(ascii: "{")
        else { throw CoreError.invalidArgument("details_json", "must be a JSON object") }
        return JSONText(bytes)
    }

    func getTrace(request: Custody_V1_GetTraceRequest, context: ServerContext) async throws -> Custody_V1_Trace {
        let (spans, summary, _) = try await runtime.traces.getTrace(request.traceID)
        var reply = Custody_V1_Trace()
        reply.traceID = request.traceID
        reply.spans = try spans.map { try ProtobufJSON.message(Custody_V1_Span.self, from: $0.jsonValue) }
        reply.summary = try ProtobufJSON.message(Custody_V1_TraceSummary.self, from: summary.jsonValue)
        return reply
    }

    func criticalPath(request: Custody_V1_GetTraceRequest, context: ServerContext) async throws -> Custody_V1_CriticalPath {
        let path = try await runtime.traces.criticalPath(request.traceID)
        func milliseconds(_ nanoseconds: Int64) -> Double { Double(nanoseconds) / 1_000_000 }
        var reply = Custody_V1_CriticalPath()
        reply.traceID = path.traceId
        reply.durationMs = milliseconds(path.durationNanoseconds)
        reply.path = path.steps.map { step in
            var entry = Custody_V1_CriticalPathStep()
            let span = step.record.span
            if let spanId = span.spanId { entry.spanID = spanId }
            entry.seq = step.record.seq
            entry.source = span.source
            entry.operation = span.operation
            entry.stage = span.stage
            entry.depth = UInt32(clamping: step.depth)
            entry.selfMs = milliseconds(step.selfNanoseconds)
            entry.startOffsetMs = milliseconds(span.timestamp - path.start)
            entry.sections = step.sections.map { section in
                var stretch = Custody_V1_CriticalPathSection()
                stretch.fromMs = milliseconds(section.lowerBound)
                stretch.toMs = milliseconds(section.upperBound)
                return stretch
            }
            return entry
        }
        reply.bySource = path.bySource.mapValues(milliseconds)
        reply.gapMs = milliseconds(path.gapNanoseconds)
        if let retention = path.retention { reply.retainedFromSeq = retention.firstRetainedSeq }
        return reply
    }
}
