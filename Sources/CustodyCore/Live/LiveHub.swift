import CustodyLog
import DequeModule
import Logging
import NIOCore

/// Fans every new span out to the live-stream clients (WebSocket, RPC stream) as the log
/// acknowledges it.
///
/// Guarantees:
/// - A span reaches a client only after it is durable (the hub reads the log, never the ingest
///   path), in seq order, at most once.
/// - The hub never waits for a client: each client has its own bounded buffer; when it is full the
///   span is dropped for that client alone and counted, and the client is told how many it
///   missed (``LiveMessage/lagged(_:)``) as soon as there is room again. A stalled client costs
///   its buffer and nothing else.
/// - ``subscribe(filter:bufferSize:)`` returns the seq the subscription starts after, so a client
///   that wants history reads `(since, start]` from the log (``catchUp(from:through:filter:)``)
///   and then the stream, with no gap and no duplicate.
public actor LiveHub {
    /// A span as a client receives it: the record (for filtering) and its encoding, made once for
    /// every client by the adapter's `encode`.
    public struct Delivery: Sendable {
        public var record: SpanRecord
        public var encoded: ByteBuffer
    }

    /// What a subscription yields.
    public enum LiveMessage: Sendable {
        case span(Delivery)
        /// `n` spans were dropped for this client because it fell behind.
        case lagged(Int)
        /// The client resumed after a pause: the spans after the first seq up to the second one
        /// that match the filter were not delivered live and are to be read from the log.
        case resumed(after: UInt64, through: UInt64, filter: LiveFilter)
    }

    /// A client's subscription.
    public struct Subscription: Sendable {
        public let id: Int
        /// Every span after this seq comes through ``messages``; none at or before it.
        public let startsAfter: UInt64
        public let messages: AsyncStream<LiveMessage>
        let continuation: AsyncStream<LiveMessage>.Continuation

        /// Ends ``messages`` now, from any context (a cancellation or shutdown handler); the hub
        /// forgets the client at its next span or at ``LiveHub/unsubscribe(_:)``.
        public func finish() { continuation.finish() }
    }

    private struct Client {
        var filter: LiveFilter
        var continuation: AsyncStream<LiveMessage>.Continuation
        var dropped = 0
        var pausedAfter: UInt64?
    }

    let log: any EventLog
    let encode: @Sendable (SpanRecord) -> ByteBuffer
    let logger: Logger
    private var clients: [Int: Client] = [:]
    private var nextID = 0
    /// The last seq fanned out.
    private var position: UInt64
    /// Spans dropped for slow clients, in all.
    public private(set) var droppedTotal = 0
    /// Spans delivered to clients, in all.
    public private(set) var deliveredTotal = 0

    public init(
        log: any EventLog,
        startingAfter position: UInt64,
        logger: Logger = Logger(label: "custody.live"),
        encode: @escaping @Sendable (SpanRecord) -> ByteBuffer
    ) {
        self.log = log
        self.position = position
        self.encode = encode
        self.logger = logger
    }

    public var clientCount: Int { clients.count }

    /// Subscribes a client; it receives every matching span after ``Subscription/startsAfter``.
    /// The stream ends when ``unsubscribe(_:)`` is called or the hub stops.
    public func subscribe(filter: LiveFilter, bufferSize: Int = 4096) -> Subscription {
        nextID += 1
        let id = nextID
        let (stream, continuation) = AsyncStream<LiveMessage>.makeStream(bufferingPolicy: .bufferingOldest(max(bufferSize, 2)))
        clients[id] = Client(filter: filter, continuation: continuation)
        return Subscription(id: id, startsAfter: position, messages: stream, continuation: continuation)
    }

    public func unsubscribe(_ id: Int) {
        clients.removeValue(forKey: id)?.continuation.finish()
    }

    /// Changes what a client receives from now on.
    public func update(_ id: Int, filter: LiveFilter) {
        clients[id]?.filter = filter
    }

    /// Stops delivering to a client until ``resume(_:)``; nothing is dropped meanwhile: on resume
    /// the client is told which range to read from the log.
    public func pause(_ id: Int) {
        guard clients[id] != nil, clients[id]?.pausedAfter == nil else { return }
        clients[id]?.pausedAfter = position
    }

    public func resume(_ id: Int) {
        guard var client = clients[id], let after = client.pausedAfter else { return }
        client.pausedAfter = nil
        if position > after { _ = client.continuation.yield(.resumed(after: after, through: position, filter: client.filter)) }
        clients[id] = client
    }

    /// Follows the log from where the hub was started until the task is cancelled or the log
    /// closes; then ends every subscription.
    public func run() async throws {
        defer {
            for client in clients.values { client.continuation.finish() }
            clients.removeAll()
        }
        while !Task.isCancelled {
            // Small reads keep each burst of fan-out well under a client's buffer.
            let records = try await log.read(from: position + 1, maxRecords: 512)
            guard let last = records.last else {
                do {
                    _ = try await log.waitForAppend(after: position)
                } catch let error as LogError where error.code == .closed {
                    return
                }
                continue
            }
            if !clients.isEmpty {
                for record in records {
                    guard let event = try? EventCodec.decode(record), case .span(let span) = event.body else { continue }
                    publish(SpanRecord(seq: record.seq, span: span))
                }
            }
            position = last.seq
        }
    }

    private func publish(_ record: SpanRecord) {
        var delivery: Delivery?
        for (id, var client) in clients where client.pausedAfter == nil && client.filter.matches(record.span) {
            if delivery == nil { delivery = Delivery(record: record, encoded: encode(record)) }
            if client.dropped > 0 {
                let result = client.continuation.yield(.lagged(client.dropped))
                if case .terminated = result {
                    clients[id] = nil
                    continue
                }
                if case .enqueued = result {
                    client.dropped = 0
                } else {
                    client.dropped += 1
                    droppedTotal += 1
                    clients[id] = client
                    continue
                }
            }
            switch client.continuation.yield(.span(delivery!)) {
            case .enqueued:
                deliveredTotal += 1
            case .dropped:
                client.dropped += 1
                droppedTotal += 1
            case .terminated:
                // The client's stream was finished (it left): forget it.
                clients[id] = nil
                continue
            @unknown default:
                break
            }
            clients[id] = client
        }
    }

    /// The matching spans with seqs in `(after, through]`, read from the log in chunks: the
    /// catch-up of a client that asked for `since_seq`, or that resumed.
    public nonisolated func catchUp(
        from after: UInt64,
        through: UInt64,
        filter: LiveFilter,
        deliver: (Delivery) async throws -> Void
    ) async throws {
        var next = after + 1
        while next <= through {
            let records = try await log.read(from: next, maxRecords: 4096)
            guard let last = records.last else { return }
            for record in records where record.seq > after && record.seq <= through {
                guard let event = try? EventCodec.decode(record), case .span(let span) = event.body, filter.matches(span) else { continue }
                let spanRecord = SpanRecord(seq: record.seq, span: span)
                try await deliver(Delivery(record: spanRecord, encoded: encode(spanRecord)))
            }
            next = last.seq + 1
        }
    }
}
