import CustodyLog
import NIOCore
import Synchronization

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// What every core operation works with: the log it appends to, the projections it reads, and
/// the clock. Shared by TaskOps, DeliveryOps and LogOps.
public struct CoreContext: Sendable {
    public let log: any EventLog
    public let projector: Projector
    public var store: any ProjectionStore { projector.store }
    let now: @Sendable () -> Int64
    let newIdentifier: @Sendable () -> String
    /// How long a read waits for the projections to reach the writes before it (read-your-writes).
    let readTimeout: Duration
    /// Serializes the operations on one task, and on one order, across every user of this
    /// context: the HTTP routes and the RPC methods must share one context (copies share these).
    let tasks = KeyedSerializer()
    let orders = KeyedSerializer()
    /// Where the adapters hand over answered requests for their closing span (shared by copies).
    public let responses = ResponseRecorder()
    /// The state snapshots retention takes (nil: a runtime without a data directory of its own).
    public var snapshots: StateSnapshots?

    public init(
        log: any EventLog,
        projector: Projector,
        readTimeout: Duration = .seconds(5),
        now: @escaping @Sendable () -> Int64 = LogTime.now,
        newIdentifier: @escaping @Sendable () -> String = { UUID().uuidString.lowercased() }
    ) {
        self.log = log
        self.projector = projector
        self.readTimeout = readTimeout
        self.now = now
        self.newIdentifier = newIdentifier
    }

    /// Waits until the projections hold every write acknowledged before this call.
    func awaitProjections() async throws(CoreError) {
        let head = await log.lastSeq
        try await projector.waitUntilApplied(head, timeout: readTimeout)
    }

    /// How long a fenced write is tried again before it answers `conflict`.
    static let fencedRetryLimit: Duration = .seconds(10)

    /// Runs `attempt` — read the projections, then append under a fence (``AppendFence``) that
    /// names what was read — until its fence holds. A fence fails when another writer (another
    /// node of a cluster) wrote to the same thing first; the log then knows of that write, so
    /// the next attempt waits for the projections to hold it and reads again. A node whose
    /// writes to one thing keep coming can win many races in a row (its own writes need no
    /// catching up), so the loser keeps trying for ``fencedRetryLimit``, not a number of times,
    /// then answers `conflict`.
    func retryingFenced<Result>(_ attempt: () async throws(CoreError) -> Result) async throws(CoreError) -> Result {
        let deadline = ContinuousClock.now + Self.fencedRetryLimit
        while true {
            do {
                return try await attempt()
            } catch  where (error.cause as? LogError)?.code == .fenced {
                if ContinuousClock.now >= deadline { throw error }
            }
        }
    }

    /// Appends the request's `request_received` span (when it is a request), an operation's
    /// events and its `processing` span (source `orchestrator`, in the request's trace) in one
    /// append; returns the receipt, whose `firstSeq` is the first of `bodies`.
    func append(
        _ bodies: [EventBody],
        operation: String,
        request: RequestTrace,
        started: ContinuousClock.Instant,
        details: JSONValue? = nil,
        fence: AppendFence? = nil
    )
        async throws(CoreError) -> AppendReceipt
    {
        let elapsed = ContinuousClock.now - started
        let processing = Span.orchestrator(
            stage: SpanStage.processing.rawValue,
            operation: operation,
            requestTraceId: request.traceId,
            durationMs: elapsed.inMilliseconds,
            // A span starts when its work started: timestamp + duration is when it ended.
            timestamp: now() - Int64(elapsed.inSeconds * 1e9),
            details: details?.jsonText
        )
        return try await append(bodies + [.span(processing)], request: request, fence: fence)
    }

    /// Appends `bodies` in one append, preceded by the request's `request_received` span when it is
    /// a request and that span is not in the log yet; returns the receipt, whose `firstSeq` is the
    /// first of `bodies`. For an operation that appends in several steps (a replay).
    func append(_ bodies: [EventBody], request: RequestTrace, fence: AppendFence? = nil) async throws(CoreError) -> AppendReceipt {
        var events: [EventBody] = []
        events.reserveCapacity(bodies.count + 1)
        if !request.recorded.received.load(ordering: .acquiring), let received = request.receivedSpan { events.append(.span(received)) }
        events.append(contentsOf: bodies)
        do {
            var receipt = try await log.append(events.map(EventCodec.encode), timestamp: nil, fence: fence)
            request.recorded.received.store(true, ordering: .releasing)
            request.noteWrite(receipt)
            // The receipt's first seq is the operation's first event's, not request_received's.
            if events.count > bodies.count { receipt.firstSeq += 1 }
            return receipt
        } catch {
            throw CoreError(appending: error)
        }
    }

    /// Closes a request in its trace: `response_sent` with the request's whole duration and the
    /// status it answered, or `error` for a valid request that failed (an unknown entity, a
    /// conflict), preceded by `request_received` when the operation appended none (a read, or a
    /// write that found nothing to do). Nothing when the operation closed the request itself.
    /// Best effort: the operation's own events are durable already; a failure here loses only
    /// these spans.
    public func recordResponse(_ request: RequestTrace, status: Int, error: CoreError? = nil) async {
        await recordResponses([(request, status)], error: error)
    }

    /// ``recordResponse(_:status:error:)`` for several requests, in one append.
    func recordResponses(_ requests: [(RequestTrace, Int)], error: CoreError? = nil) async {
        var spans: [Span] = []
        var closing: [RequestTrace] = []
        for (request, status) in requests {
            guard let received = request.receivedSpan, !request.recorded.closed.load(ordering: .acquiring) else { continue }
            let durationMs = (ContinuousClock.now - request.started).inMilliseconds
            let details: JSONValue =
                if let error {
                    .object(["status": .integer(Int64(status)), "error": error.jsonValue])
                } else {
                    .object(["status": .integer(Int64(status))])
                }
            let span = Span.orchestrator(
                stage: error == nil ? SpanStage.responseSent.rawValue : SpanStage.error.rawValue,
                operation: request.operation,
                requestTraceId: request.traceId,
                durationMs: durationMs,
                // It covers the whole request: from its arrival, for its duration.
                timestamp: received.timestamp,
                details: details.jsonText
            )
            if !request.recorded.received.load(ordering: .acquiring) { spans.append(received) }
            spans.append(span)
            closing.append(request)
        }
        guard !spans.isEmpty else { return }
        if (try? await log.append(spans.map { EventCodec.encode(.span($0)) })) != nil {
            for request in closing { request.recorded.closed.store(true, ordering: .releasing) }
        }
    }

    /// Appends only an `error` span for a valid request about something that does not exist
    /// (docs/api.md: such requests are traced normally, with an error span).
    func appendErrorSpan(operation: String, request: RequestTrace, error: CoreError) async {
        let span = Span.orchestrator(
            stage: SpanStage.error.rawValue,
            operation: operation,
            requestTraceId: request.traceId,
            timestamp: now(),
            details: JSONValue.object(["error": error.jsonValue]).jsonText
        )
        let spans = request.recorded.received.load(ordering: .acquiring) ? [span] : [request.receivedSpan, span].compactMap { $0 }
        if (try? await log.append(spans.map { EventCodec.encode(.span($0)) })) != nil {
            request.recorded.received.store(true, ordering: .releasing)
            request.recorded.closed.store(true, ordering: .releasing)
        }
    }
}

/// Serializes work per key (a task id): one holder at a time, waiters in arrival order.
///
/// ``release(_:)`` is synchronous, so a holder releases in a `defer` with nothing left running
/// after it returns. The lock guards only the queues, never the work (no I/O under it).
final class KeyedSerializer: Sendable {
    private let waiting = Mutex<[String: [CheckedContinuation<Void, Never>]]>([:])

    func acquire(_ key: String) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let holds = waiting.withLock { waiting -> Bool in
                if waiting[key] == nil {
                    waiting[key] = []
                    return true
                }
                waiting[key, default: []].append(continuation)
                return false
            }
            if holds { continuation.resume() }
        }
    }

    func release(_ key: String) {
        let next = waiting.withLock { waiting -> CheckedContinuation<Void, Never>? in
            guard var queue = waiting[key] else { return nil }
            if queue.isEmpty {
                waiting[key] = nil
                return nil
            }
            let next = queue.removeFirst()
            waiting[key] = queue
            return next
        }
        next?.resume()
    }
}

/// Field checks shared by the operations: every error names its field.
enum FieldRules {
    static func identifier(_ value: String?, _ field: String, maximum: Int = 128) throws(CoreError) -> String {
        guard let value else { throw CoreError.invalidArgument(field, "is required") }
        return try SpanInput.check(value, field, maximum: maximum)
    }

    static func text(_ value: String?, _ field: String, maximum: Int) throws(CoreError) -> String {
        guard let value else { throw CoreError.invalidArgument(field, "is required") }
        guard !value.isEmpty, value.utf8.count <= maximum else { throw CoreError.invalidArgument(field, "must be 1–\(maximum) bytes") }
        return value
    }

    static func object(_ value: JSONValue?, _ field: String, required: Bool = true, maximum: Int = 1 << 20) throws(CoreError) -> JSONText? {
        guard let value else {
            if required { throw CoreError.invalidArgument(field, "is required") }
            return nil
        }
        guard value.objectValue != nil else { throw CoreError.invalidArgument(field, "must be a JSON object") }
        let text = value.jsonText
        guard text.bytes.readableBytes <= maximum else {
            throw CoreError(.payloadTooLarge, "\(field) is over \(maximum) bytes encoded", field: field)
        }
        return text
    }
}
