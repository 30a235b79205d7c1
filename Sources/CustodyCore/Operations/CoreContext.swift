import CustodyLog
import NIOCore

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// What every core operation works with: the log it appends to, the projections it reads, and
/// the clock. Shared by TaskOps, DeliveryOps and LogOps.
public struct CoreContext: Sendable {
    public let log: SegmentLog
    public let projector: Projector
    public var store: ProjectionStore { projector.store }
    let now: @Sendable () -> Int64
    let newIdentifier: @Sendable () -> String
    /// How long a read waits for the projections to reach the writes before it (read-your-writes).
    let readTimeout: Duration
    /// Serializes the operations on one task, and on one order, across every user of this
    /// context: the HTTP routes and the RPC methods must share one context (copies share these).
    let tasks = KeyedSerializer()
    let orders = KeyedSerializer()

    public init(
        log: SegmentLog,
        projector: Projector,
        readTimeout: Duration = .seconds(5),
        now: @escaping @Sendable () -> Int64 = SegmentLog.now,
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

    /// Appends an operation's events and its `processing` span (source `orchestrator`, in the
    /// request's trace) in one append; returns the receipt.
    func append(
        _ bodies: [EventBody],
        operation: String,
        requestTraceId: String,
        started: ContinuousClock.Instant,
        details: JSONValue? = nil
    )
        async throws(CoreError) -> AppendReceipt
    {
        let elapsed = ContinuousClock.now - started
        let processing = Span.orchestrator(
            stage: "processing",
            operation: operation,
            requestTraceId: requestTraceId,
            durationMs: elapsed.inMilliseconds,
            timestamp: now(),
            details: details?.jsonText
        )
        do {
            return try await log.append((bodies + [.span(processing)]).map(EventCodec.encode))
        } catch {
            throw CoreError(appending: error)
        }
    }

    /// Appends only an `error` span for a valid request about something that does not exist
    /// (API.md: such requests are traced normally, with an error span).
    func appendErrorSpan(operation: String, requestTraceId: String, error: CoreError) async {
        let span = Span.orchestrator(
            stage: "error",
            operation: operation,
            requestTraceId: requestTraceId,
            timestamp: now(),
            details: JSONValue.object(["error": .object(["code": .string(error.code.description), "message": .string(error.message)])]).jsonText
        )
        _ = try? await log.append(EventCodec.encode(.span(span)))
    }
}

/// Serializes work per key (a task id): one holder at a time, waiters in arrival order.
actor KeyedSerializer {
    private var waiting: [String: [CheckedContinuation<Void, Never>]] = [:]

    func acquire(_ key: String) async {
        if waiting[key] == nil {
            waiting[key] = []
            return
        }
        await withCheckedContinuation { waiting[key, default: []].append($0) }
    }

    func release(_ key: String) {
        guard var queue = waiting[key] else { return }
        if queue.isEmpty {
            waiting[key] = nil
        } else {
            let next = queue.removeFirst()
            waiting[key] = queue
            next.resume()
        }
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
