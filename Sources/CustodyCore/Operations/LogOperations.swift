import CustodyLog
import NIOCore
import Synchronization

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// LogOps: recording spans (docs/api.md "Logging"). The HTTP route and the RPC method both call
/// ``recordLog(_:request:)``; neither holds any logic of its own.
public struct LogOperations: Sendable {
    /// At most this many entries in one call.
    public static let maximumEntries = 10_000

    let log: any EventLog
    let now: @Sendable () -> Int64
    let newTraceId: @Sendable () -> String

    public init(
        log: any EventLog,
        now: @escaping @Sendable () -> Int64 = LogTime.now,
        newTraceId: @escaping @Sendable () -> String = { UUID().uuidString.lowercased() }
    ) {
        self.log = log
        self.now = now
        self.newTraceId = newTraceId
    }

    /// The body of a `recordLog` call: one entry, or a list (docs/api.md accepts a JSON array or
    /// `{"entries": [...]}`); errors about a list's entries say which one.
    public enum Entries: Sendable, Hashable {
        case one(SpanInput)
        case many([SpanInput])
    }

    /// What ``recordLog(_:request:)`` returns.
    public struct Recorded: Sendable, Hashable {
        /// The trace id of each entry, in order.
        public var traceIds: [String]
        /// The seqs the entries got (consecutive).
        public var firstSeq: UInt64
        public var lastSeq: UInt64
        public var accepted: Int { traceIds.count }
    }

    /// Validates every entry, then appends them and one `processing` span for this operation (in
    /// the request's trace) in a single append: all of them become durable, or none. Returns only
    /// once they are durable. A problem with any entry rejects the call and appends nothing; the
    /// error names the entry and field (`entries[3].duration_ms`).
    public func recordLog(_ body: Entries, request: RequestTrace) async throws(CoreError) -> Recorded {
        let entries: [SpanInput]
        switch body {
        case .one(let entry): entries = [entry]
        case .many(let list): entries = list
        }
        guard !entries.isEmpty else { throw CoreError.invalidArgument("entries", "must hold at least one entry") }
        guard entries.count <= Self.maximumEntries else {
            throw CoreError.invalidArgument("entries", "holds \(entries.count) entries; the limit is \(Self.maximumEntries)")
        }
        let started = ContinuousClock.now
        let time = now()
        var spans: [Span] = []
        spans.reserveCapacity(entries.count)
        for (position, entry) in entries.enumerated() {
            do {
                spans.append(try entry.validated(now: time, newTraceId: newTraceId))
            } catch {
                if case .one = body { throw error }
                throw error.prefixingField("entries[\(position)]")
            }
        }
        return try await append(spans, operation: "recordLog", request: request, started: started, time: time)
    }

    /// Appends validated spans, after the request's `request_received` span (when it is a request)
    /// and before the operation's `processing` span, in one append; durable when it returns.
    func append(
        _ spans: [Span],
        operation: String,
        request: RequestTrace,
        started: ContinuousClock.Instant,
        time: Int64
    ) async throws(CoreError) -> Recorded {
        var payloads: [ByteBuffer] = []
        payloads.reserveCapacity(spans.count + 2)
        let received = request.receivedSpan
        if let received { payloads.append(EventCodec.encode(.span(received))) }
        for span in spans { payloads.append(EventCodec.encode(.span(span))) }
        let elapsed = ContinuousClock.now - started
        let processing = Span.orchestrator(
            stage: SpanStage.processing.rawValue,
            operation: operation,
            requestTraceId: request.traceId,
            durationMs: elapsed.inMilliseconds,
            timestamp: time,
            details: JSONValue.object(["accepted": .integer(Int64(spans.count))]).jsonText
        )
        payloads.append(EventCodec.encode(.span(processing)))
        let receipt: AppendReceipt
        do {
            receipt = try await log.append(payloads, timestamp: time)
            request.recorded.received.store(true, ordering: .releasing)
            request.noteWrite(receipt)
        } catch {
            throw CoreError(appending: error)
        }
        let firstSeq = receipt.firstSeq + (received == nil ? 0 : 1)
        return Recorded(traceIds: spans.map(\.traceId), firstSeq: firstSeq, lastSeq: firstSeq + UInt64(spans.count) - 1)
    }
}

extension CoreError {
    /// The one place where a log failure becomes a core error.
    init(appending error: any Error) {
        guard let error = error as? LogError else {
            self.init(.internalError, "appending to the log failed unexpectedly")
            return
        }
        switch error.code {
        case .storageUnavailable, .closed:
            self.init(.storageUnavailable, "the log cannot be written: \(error.message)")
        case .overloaded:
            self.init(.overloaded, "too much is waiting to be written; retry later")
        case .invalidArgument:
            self.init(.invalidArgument, error.message)
        case .fenced:
            self.init(.conflict, "another write to the same thing came first: \(error.message)", cause: error)
        default:
            self.init(.internalError, "appending to the log failed: \(error.message)")
        }
    }

    /// The same error about a field of an element: `source` becomes `entries[2].source`.
    public func prefixingField(_ prefix: String) -> CoreError {
        guard let field else { return CoreError(code, "\(prefix): \(message)", field: prefix) }
        let named = "\(prefix).\(field)"
        return CoreError(code, message.hasPrefix(field) ? named + message.dropFirst(field.count) : "\(named): \(message)", field: named)
    }
}
