import CustodyLog
import NIOCore

/// The binary encoding of events in log records (docs/log-format.md, "Events").
///
/// A record is: the encoding version (1 byte), the ``EventType`` tag (1 byte), then the body's
/// fields in a fixed order. A newer binary keeps a decoder for every version it ever wrote, so
/// it reads every older log; a record of a version it does not know is rejected, not guessed at.
public enum EventCodec {
    /// The version this binary writes for every type but `log.loss` with its chain value.
    public static let currentVersion: UInt8 = 1
    /// Version 2 is version 1 with one more field in `log.loss`: the hash chain's value before
    /// the lost range. Only a `log.loss` that has it is written as version 2, so every record
    /// still re-encodes to its own bytes.
    static let lossWithChainVersion: UInt8 = 2

    public static func encode(_ body: EventBody) -> ByteBuffer {
        var writer = EventWriter()
        if case .logLoss(let loss) = body, loss.chainBefore != nil {
            writer.byte(lossWithChainVersion)
        } else {
            writer.byte(currentVersion)
        }
        writer.byte(body.type.rawValue)
        switch body {
        case .span(let span):
            writer.string(span.traceId)
            writer.optionalString(span.spanId)
            writer.optionalString(span.parentSpanId)
            writer.string(span.source)
            writer.string(span.stage)
            writer.string(span.operation)
            writer.optionalString(span.taskUUID)
            writer.optional(span.durationMs) { $0.double($1) }
            writer.int64(span.timestamp)
            writer.optionalJSON(span.details)
        case .taskCreated(let event):
            writer.string(event.uuid)
            writer.string(event.orderId)
            writer.json(event.payload)
        case .taskStatusChanged(let event):
            writer.string(event.uuid)
            writer.byte(event.status.tag)
            writer.byte(event.previousStatus.tag)
        case .factoryErrorRecorded(let event):
            writer.string(event.errorId)
            writer.string(event.source)
            writer.string(event.message)
            writer.optionalString(event.orderId)
            writer.optionalString(event.taskUUID)
            writer.optionalString(event.errorType)
            writer.optionalJSON(event.payload)
        case .followupSubmitted(let event):
            writer.string(event.id)
            writer.string(event.orderId)
            writer.string(event.type)
            writer.string(event.note)
            writer.byte(event.impact.tag)
        case .deliveryFinalized(let event):
            writer.string(event.orderId)
            writer.varint(event.revision)
            writer.json(event.report)
        case .githubRequested(let event):
            writer.string(event.operationId)
            writer.byte(event.kind.tag)
            writer.string(event.idempotencyKey)
            writer.string(event.traceId)
            writer.json(event.params)
        case .githubSucceeded(let event), .githubFailed(let event):
            writer.string(event.operationId)
            writer.byte(event.kind.tag)
            writer.varint(UInt64(event.attempt))
            writer.json(event.outcome)
        case .replayStarted(let event), .replayCompleted(let event):
            writer.string(event.newTrace)
            writer.string(event.fromTrace)
            writer.byte(event.mode.tag)
            writer.double(event.speed)
            writer.varint(UInt64(event.spans))
            writer.string(event.status.rawValue)
        case .githubAttemptFailed(let event):
            writer.string(event.operationId)
            writer.byte(event.kind.tag)
            writer.varint(UInt64(event.attempt))
            writer.int64(event.retryAt)
            writer.json(event.error)
        case .logLoss(let loss):
            writer.varint(loss.firstSeq)
            writer.varint(loss.lastSeq)
            writer.string(loss.segment)
            writer.int64(loss.offset)
            writer.int64(loss.length)
            writer.optionalString(loss.sideFile)
            writer.string(loss.reason)
            writer.int64(loss.recordedAt)
            if let chain = loss.chainBefore { writer.fixed(chain.bytes) }
        case .logCheckpoint(let checkpoint):
            writer.varint(checkpoint.seq)
            writer.fixed(checkpoint.chain.bytes)
            writer.int64(checkpoint.at)
            writer.fixed(checkpoint.publicKey)
            writer.optional(checkpoint.nextPublicKey) { $0.fixed($1) }
            writer.fixed(checkpoint.signature)
        case .logRetention(let retention):
            writer.varint(retention.firstSeq)
            writer.varint(retention.lastSeq)
            writer.fixed(retention.chain.bytes)
            writer.string(retention.snapshot)
            writer.int64(retention.bytes)
            writer.int64(retention.recordedAt)
        }
        return writer.buffer
    }

    /// Decodes a record's bytes; throws ``EventCodecError`` for anything that is not exactly one
    /// event of a known version and type.
    public static func decode(_ bytes: ByteBuffer) throws(EventCodecError) -> EventBody {
        var reader = EventReader(bytes)
        let version = try reader.byte()
        guard version == currentVersion || version == lossWithChainVersion else { throw reader.fail("unknown encoding version \(version)") }
        let type = try reader.tag(EventType.init(rawValue:), "event type")
        guard version == currentVersion || type == .logLoss else { throw reader.fail("encoding version \(version) is only used by log.loss") }
        let body: EventBody
        switch type {
        case .span:
            let traceId = try reader.string()
            let spanId = try reader.optionalString()
            let parentSpanId = try reader.optionalString()
            let source = try reader.string()
            let stage = try reader.string()
            let operation = try reader.string()
            let taskUUID = try reader.optionalString()
            let durationMs = try reader.optional { (reader: inout EventReader) throws(EventCodecError) in try reader.double() }
            let timestamp = try reader.int64()
            let details = try reader.optionalJSON()
            body = .span(
                Span(
                    traceId: traceId,
                    spanId: spanId,
                    parentSpanId: parentSpanId,
                    source: source,
                    stage: stage,
                    operation: operation,
                    taskUUID: taskUUID,
                    durationMs: durationMs,
                    timestamp: timestamp,
                    details: details
                )
            )
        case .taskCreated:
            body = .taskCreated(TaskCreated(uuid: try reader.string(), orderId: try reader.string(), payload: try reader.json()))
        case .taskStatusChanged:
            body = .taskStatusChanged(
                TaskStatusChanged(
                    uuid: try reader.string(),
                    status: try reader.tag(TaskStatus.init(tag:), "task status"),
                    previousStatus: try reader.tag(TaskStatus.init(tag:), "task status")
                )
            )
        case .factoryErrorRecorded:
            body = .factoryErrorRecorded(
                FactoryErrorRecorded(
                    errorId: try reader.string(),
                    source: try reader.string(),
                    message: try reader.string(),
                    orderId: try reader.optionalString(),
                    taskUUID: try reader.optionalString(),
                    errorType: try reader.optionalString(),
                    payload: try reader.optionalJSON()
                )
            )
        case .followupSubmitted:
            body = .followupSubmitted(
                FollowupSubmitted(
                    id: try reader.string(),
                    orderId: try reader.string(),
                    type: try reader.string(),
                    note: try reader.string(),
                    impact: try reader.tag(FollowupImpact.init(tag:), "impact")
                )
            )
        case .deliveryFinalized:
            body = .deliveryFinalized(DeliveryFinalized(orderId: try reader.string(), revision: try reader.varint(), report: try reader.json()))
        case .githubRequested:
            body = .githubRequested(
                GitHubRequested(
                    operationId: try reader.string(),
                    kind: try reader.tag(GitHubOperationKind.init(tag:), "GitHub operation kind"),
                    idempotencyKey: try reader.string(),
                    traceId: try reader.string(),
                    params: try reader.json()
                )
            )
        case .githubSucceeded, .githubFailed:
            let finished = GitHubFinished(
                operationId: try reader.string(),
                kind: try reader.tag(GitHubOperationKind.init(tag:), "GitHub operation kind"),
                attempt: try reader.uint32(),
                outcome: try reader.json()
            )
            body = type == .githubSucceeded ? .githubSucceeded(finished) : .githubFailed(finished)
        case .replayStarted, .replayCompleted:
            let replay = ReplayEvent(
                newTrace: try reader.string(),
                fromTrace: try reader.string(),
                mode: try reader.tag(ReplayMode.init(tag:), "replay mode"),
                speed: try reader.double(),
                spans: try reader.uint32(),
                status: ReplayStatus(rawValue: try reader.string())
            )
            body = type == .replayStarted ? .replayStarted(replay) : .replayCompleted(replay)
        case .githubAttemptFailed:
            body = .githubAttemptFailed(
                GitHubAttemptFailed(
                    operationId: try reader.string(),
                    kind: try reader.tag(GitHubOperationKind.init(tag:), "GitHub operation kind"),
                    attempt: try reader.uint32(),
                    retryAt: try reader.int64(),
                    error: try reader.json()
                )
            )
        case .logLoss:
            body = .logLoss(
                LogLoss(
                    firstSeq: try reader.varint(),
                    lastSeq: try reader.varint(),
                    segment: try reader.string(),
                    offset: try reader.int64(),
                    length: try reader.int64(),
                    sideFile: try reader.optionalString(),
                    reason: try reader.string(),
                    recordedAt: try reader.int64(),
                    chainBefore: version == lossWithChainVersion ? try reader.chainValue() : nil
                )
            )
        case .logCheckpoint:
            body = .logCheckpoint(
                LogCheckpoint(
                    seq: try reader.varint(),
                    chain: try reader.chainValue(),
                    at: try reader.int64(),
                    publicKey: try reader.fixed(LogCheckpoint.publicKeyLength),
                    nextPublicKey: try reader.optional { (reader: inout EventReader) throws(EventCodecError) in
                        try reader.fixed(LogCheckpoint.publicKeyLength)
                    },
                    signature: try reader.fixed(LogCheckpoint.signatureLength)
                )
            )
        case .logRetention:
            body = .logRetention(
                LogRetention(
                    firstSeq: try reader.varint(),
                    lastSeq: try reader.varint(),
                    chain: try reader.chainValue(),
                    snapshot: try reader.string(),
                    bytes: try reader.int64(),
                    recordedAt: try reader.int64()
                )
            )
        }
        guard reader.buffer.readableBytes == 0 else { throw reader.fail("\(reader.buffer.readableBytes) bytes after the event") }
        return body
    }

    /// The event a log record holds.
    public static func decode(_ record: LogRecord) throws(EventCodecError) -> Event {
        Event(seq: record.seq, ingestedAt: record.timestamp, body: try decode(record.payload))
    }
}
