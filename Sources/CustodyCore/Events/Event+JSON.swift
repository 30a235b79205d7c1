import CustodyLog
import NIOCore

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Events as JSON, with docs/api.md's snake_case field names: `custody log dump` prints this, and the
/// API's responses are built from the same fields.
extension Event {
    /// `{"seq", "ingested_at", "type", "body": {…}}`.
    public var jsonValue: JSONValue {
        .object([
            "seq": .integer(Int64(bitPattern: seq)), "ingested_at": .string(RFC3339.format(ingestedAt)), "type": .string(type.name),
            "body": body.jsonValue,
        ])
    }

    /// The trace an event belongs to: a span's trace, or a replay's new trace.
    public var traceId: String? {
        switch body {
        case .span(let span): span.traceId
        case .replayStarted(let replay), .replayCompleted(let replay): replay.newTrace
        default: nil
        }
    }
}

extension EventBody {
    public var jsonValue: JSONValue {
        func string(_ value: String?) -> JSONValue { value.map(JSONValue.string) ?? .null }
        switch self {
        case .span(let span):
            return .object([
                "trace_id": .string(span.traceId), "span_id": string(span.spanId), "parent_span_id": string(span.parentSpanId),
                "source": .string(span.source), "stage": .string(span.stage), "operation": .string(span.operation),
                "task_uuid": string(span.taskUUID), "duration_ms": span.durationMs.map(JSONValue.number) ?? .null,
                "timestamp": .string(RFC3339.format(span.timestamp)), "details": span.details.map(\.jsonValue) ?? .null,
            ])
        case .taskCreated(let event):
            return .object(["uuid": .string(event.uuid), "order_id": .string(event.orderId), "payload": event.payload.jsonValue])
        case .taskStatusChanged(let event):
            return .object([
                "uuid": .string(event.uuid), "status": .string(event.status.rawValue), "previous_status": .string(event.previousStatus.rawValue),
            ])
        case .factoryErrorRecorded(let event):
            return .object([
                "error_id": .string(event.errorId), "source": .string(event.source), "message": .string(event.message),
                "order_id": string(event.orderId), "task_uuid": string(event.taskUUID), "error_type": string(event.errorType),
                "payload": event.payload.map(\.jsonValue) ?? .null,
            ])
        case .followupSubmitted(let event):
            return .object([
                "id": .string(event.id), "order_id": .string(event.orderId), "type": .string(event.type), "note": .string(event.note),
                "impact": .string(event.impact.rawValue),
            ])
        case .deliveryFinalized(let event):
            return .object([
                "order_id": .string(event.orderId), "revision": .integer(Int64(bitPattern: event.revision)), "report": event.report.jsonValue,
            ])
        case .githubRequested(let event):
            return .object([
                "operation_id": .string(event.operationId), "kind": .string(event.kind.rawValue),
                "idempotency_key": .string(event.idempotencyKey), "trace_id": .string(event.traceId), "params": event.params.jsonValue,
            ])
        case .githubAttemptFailed(let event):
            return .object([
                "operation_id": .string(event.operationId), "kind": .string(event.kind.rawValue), "attempt": .integer(Int64(event.attempt)),
                "retry_at": .string(RFC3339.format(event.retryAt)), "error": event.error.jsonValue,
            ])
        case .githubSucceeded(let event), .githubFailed(let event):
            return .object([
                "operation_id": .string(event.operationId), "kind": .string(event.kind.rawValue), "attempt": .integer(Int64(event.attempt)),
                (self.type == .githubSucceeded ? "result" : "error"): event.outcome.jsonValue,
            ])
        case .replayStarted(let event), .replayCompleted(let event):
            return .object([
                "new_trace": .string(event.newTrace), "from_trace": .string(event.fromTrace), "mode": .string(event.mode.rawValue),
                "speed": .number(event.speed), "spans": .integer(Int64(event.spans)), "status": .string(event.status.rawValue),
            ])
        case .logLoss(let loss):
            return .object([
                "first_seq": .integer(Int64(bitPattern: loss.firstSeq)), "last_seq": .integer(Int64(bitPattern: loss.lastSeq)),
                "segment": .string(loss.segment), "offset": .integer(loss.offset), "length": .integer(loss.length),
                "side_file": string(loss.sideFile), "reason": .string(loss.reason), "recorded_at": .string(RFC3339.format(loss.recordedAt)),
                "chain_before": string(loss.chainBefore?.hex),
            ])
        case .logCheckpoint(let checkpoint):
            return checkpoint.jsonValue()
        case .logRetention(let retention):
            return retention.jsonValue
        }
    }
}

extension JSONText {
    /// The parsed value (`null` if the text is not JSON, which validated text always is).
    public var jsonValue: JSONValue {
        (try? JSONDecoder().decode(JSONValue.self, from: Data(bytes.readableBytesView))) ?? .null
    }
}
