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
/// - ``subscribe(filter:bufferSize:batched:)`` returns the seq the subscription starts after, so
///   a client that wants history reads `(since, start]` from the log
///   (``catchUp(from:through:filter:deliver:)``) and then the stream, with no gap and no
///   duplicate.
/// - A batched client receives ``Frame``s: every matching span since its last frame, in seq
///   order, at most ``maxFrameSpans`` a frame. A frame goes out as soon as the spans are read when
///   the last one went out ``frameInterval`` or longer ago, else when that interval is up. Clients
///   with the same filter share each frame and its encoding, so 100 dashboards on one busy stream
///   cost one encoding per frame interval, not 100 per span.
public actor LiveHub {
    /// A span as a client receives it: the record (for filtering) and its encoding, made once for
    /// every client by the adapter's encoding.
    public struct Delivery: Sendable {
        public var record: SpanRecord
        public var encoded: ByteBuffer
    }

    /// Spans for batched clients, in seq order, and their encoding, made once for every client
    /// with the same filter.
    public struct Frame: Sendable {
        public var records: [SpanRecord]
        public var encoded: ByteBuffer
    }

    /// What a subscription yields.
    public enum LiveMessage: Sendable {
        case span(Delivery)
        /// A batched client's spans.
        case frame(Frame)
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

    /// At most one frame per batched client this often under load (docs/api.md "Live stream").
    public static let frameInterval: Duration = .milliseconds(20)
    /// At most this many spans in a frame.
    public static let maxFrameSpans = 1000

    private struct Client {
        var filter: LiveFilter
        var continuation: AsyncStream<LiveMessage>.Continuation
        var batched: Bool
        var dropped = 0
        var pausedAfter: UInt64?
    }

    /// The batched clients with one filter, and the spans read for them since their last frame.
    private struct FrameGroup {
        var members: Set<Int> = []
        var pending: [SpanRecord] = []
        var lastFrame: ContinuousClock.Instant?
    }

    let log: any EventLog
    let encoding: LiveEncoding
    let logger: Logger
    private var clients: [Int: Client] = [:]
    private var frameGroups: [LiveFilter: FrameGroup] = [:]
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
        encoding: LiveEncoding
    ) {
        self.log = log
        self.position = position
        self.encoding = encoding
        self.logger = logger
    }

    public var clientCount: Int { clients.count }

    /// Subscribes a client; it receives every matching span after ``Subscription/startsAfter``.
    /// The stream ends when ``unsubscribe(_:)`` is called or the hub stops.
    ///
    /// `bufferSize` is in spans. A batched client's buffer holds `bufferSize / 64` frames (at
    /// least 4): a frame carries up to ``maxFrameSpans`` spans, shared with the other clients of
    /// its filter.
    public func subscribe(filter: LiveFilter, bufferSize: Int = 4096, batched: Bool = false) -> Subscription {
        nextID += 1
        let id = nextID
        let capacity = batched ? max(bufferSize / 64, 4) : max(bufferSize, 2)
        let (stream, continuation) = AsyncStream<LiveMessage>.makeStream(bufferingPolicy: .bufferingOldest(capacity))
        if batched {
            // What the group read before this client came is at or before its start: out first.
            sendFrame(to: filter)
            frameGroups[filter, default: FrameGroup()].members.insert(id)
        }
        clients[id] = Client(filter: filter, continuation: continuation, batched: batched)
        return Subscription(id: id, startsAfter: position, messages: stream, continuation: continuation)
    }

    public func unsubscribe(_ id: Int) {
        guard let client = clients.removeValue(forKey: id) else { return }
        client.continuation.finish()
        if client.batched { leaveFrameGroup(id, filter: client.filter) }
    }

    /// Changes what a client receives from now on.
    public func update(_ id: Int, filter: LiveFilter) {
        guard let client = clients[id] else { return }
        if client.batched {
            // What was read under the old filter goes out under it; the new group's pending
            // spans were read before this client joined.
            sendFrame(to: client.filter)
            leaveFrameGroup(id, filter: client.filter)
            sendFrame(to: filter)
            frameGroups[filter, default: FrameGroup()].members.insert(id)
        }
        clients[id]?.filter = filter
    }

    /// Stops delivering to a client until ``resume(_:)``; nothing is dropped meanwhile: on resume
    /// the client is told which range to read from the log.
    public func pause(_ id: Int) {
        guard let client = clients[id], client.pausedAfter == nil else { return }
        if client.batched { sendFrame(to: client.filter) }
        clients[id]?.pausedAfter = position
    }

    public func resume(_ id: Int) {
        guard var client = clients[id], let after = client.pausedAfter else { return }
        // The group's pending spans are within the range read from the log: they go out to the
        // others while this client still counts as paused.
        if client.batched { sendFrame(to: client.filter) }
        client.pausedAfter = nil
        if position > after { _ = client.continuation.yield(.resumed(after: after, through: position, filter: client.filter)) }
        clients[id] = client
    }

    private func leaveFrameGroup(_ id: Int, filter: LiveFilter) {
        frameGroups[filter]?.members.remove(id)
        if frameGroups[filter]?.members.isEmpty == true { frameGroups[filter] = nil }
    }

    /// Follows the log from where the hub was started until the task is cancelled or the log
    /// closes; then ends every subscription.
    public func run() async throws {
        defer {
            for client in clients.values { client.continuation.finish() }
            clients.removeAll()
            frameGroups.removeAll()
        }
        while !Task.isCancelled {
            // Small reads keep each burst of fan-out well under a client's buffer.
            let records = try await log.read(from: position + 1, maxRecords: 512)
            guard let last = records.last else {
                do {
                    if let due = nextFrameDue {
                        try await waitForAppend(orFramesDue: due)
                    } else {
                        _ = try await log.waitForAppend(after: position)
                    }
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
            sendDueFrames()
        }
    }

    /// When the next frame with pending spans is due; nil when none has any.
    private var nextFrameDue: ContinuousClock.Instant? {
        frameGroups.values.lazy.filter { !$0.pending.isEmpty }.map { ($0.lastFrame ?? .now) + Self.frameInterval }.min()
    }

    /// Waits for the next append, sending the frames that come due meanwhile.
    private func waitForAppend(orFramesDue due: ContinuousClock.Instant) async throws {
        let log = log
        let position = position
        try await withThrowingTaskGroup(of: Bool.self) { group in
            group.addTask {
                _ = try await log.waitForAppend(after: position)
                return true
            }
            group.addTask {
                try await Task.sleep(until: due)
                return false
            }
            if try await group.next() == false { sendDueFrames() }
            group.cancelAll()
        }
    }

    /// Sends every group's pending spans whose last frame went out ``frameInterval`` or longer ago.
    private func sendDueFrames() {
        guard !frameGroups.isEmpty else { return }
        let now = ContinuousClock.now
        for (filter, group) in frameGroups where !group.pending.isEmpty {
            if let last = group.lastFrame, now - last < Self.frameInterval { continue }
            sendFrame(to: filter, at: now)
        }
    }

    /// Sends a group's pending spans as one frame, encoded once, to each of its clients that is
    /// not paused.
    private func sendFrame(to filter: LiveFilter, at now: ContinuousClock.Instant = .now) {
        guard let pending = frameGroups[filter]?.pending, !pending.isEmpty, let members = frameGroups[filter]?.members else { return }
        frameGroups[filter]?.pending = []
        frameGroups[filter]?.lastFrame = now
        let frame = Frame(records: pending, encoded: encoding.batch(pending))
        for id in members {
            guard var client = clients[id], client.pausedAfter == nil else { continue }
            switch yield(.frame(frame), spans: frame.records.count, to: &client) {
            case .delivered, .dropped: clients[id] = client
            case .gone:
                clients[id] = nil
                leaveFrameGroup(id, filter: filter)
            }
        }
    }

    private enum YieldResult { case delivered, dropped, gone }

    /// Yields a message of `spans` spans to a client, first telling it what it missed; counts
    /// what is dropped.
    private func yield(_ message: LiveMessage, spans: Int, to client: inout Client) -> YieldResult {
        if client.dropped > 0 {
            switch client.continuation.yield(.lagged(client.dropped)) {
            case .enqueued: client.dropped = 0
            case .terminated: return .gone
            default:
                client.dropped += spans
                droppedTotal += spans
                return .dropped
            }
        }
        switch client.continuation.yield(message) {
        case .enqueued:
            deliveredTotal += spans
            return .delivered
        case .terminated:
            return .gone
        default:
            client.dropped += spans
            droppedTotal += spans
            return .dropped
        }
    }

    private func publish(_ record: SpanRecord) {
        var delivery: Delivery?
        for (id, var client) in clients where !client.batched && client.pausedAfter == nil && client.filter.matches(record.span) {
            if delivery == nil { delivery = Delivery(record: record, encoded: encoding.span(record)) }
            if case .gone = yield(.span(delivery!), spans: 1, to: &client) {
                // The client's stream was finished (it left): forget it.
                clients[id] = nil
            } else {
                clients[id] = client
            }
        }
        // Walked by index so that the groups are changed in place, not copied per span.
        var full: [LiveFilter] = []
        var index = frameGroups.startIndex
        while index != frameGroups.endIndex {
            if frameGroups.keys[index].matches(record.span) {
                frameGroups.values[index].pending.append(record)
                if frameGroups.values[index].pending.count >= Self.maxFrameSpans { full.append(frameGroups.keys[index]) }
            }
            frameGroups.formIndex(after: &index)
        }
        for filter in full { sendFrame(to: filter) }
    }

    /// The matching spans with seqs in `(after, through]`, read from the log in chunks: the
    /// catch-up of a client that asked for `since_seq`, or that resumed.
    public nonisolated func catchUp(
        from after: UInt64,
        through: UInt64,
        filter: LiveFilter,
        deliver: (Delivery) async throws -> Void
    ) async throws {
        try await forEachChunk(from: after, through: through, filter: filter) { records in
            for record in records { try await deliver(Delivery(record: record, encoded: encoding.span(record))) }
        }
    }

    /// ``catchUp(from:through:filter:deliver:)`` for a batched client: frames of at most
    /// ``maxFrameSpans`` spans.
    public nonisolated func catchUpFrames(
        from after: UInt64,
        through: UInt64,
        filter: LiveFilter,
        deliver: (Frame) async throws -> Void
    ) async throws {
        try await forEachChunk(from: after, through: through, filter: filter) { records in
            var start = records.startIndex
            while start < records.endIndex {
                let end = min(start + Self.maxFrameSpans, records.endIndex)
                let slice = Array(records[start..<end])
                try await deliver(Frame(records: slice, encoded: encoding.batch(slice)))
                start = end
            }
        }
    }

    /// The matching spans with seqs in `(after, through]`, a chunk of the log at a time.
    private nonisolated func forEachChunk(
        from after: UInt64,
        through: UInt64,
        filter: LiveFilter,
        body: ([SpanRecord]) async throws -> Void
    ) async throws {
        var next = after + 1
        while next <= through {
            let records = try await log.read(from: next, maxRecords: 4096)
            guard let last = records.last else { return }
            var matching: [SpanRecord] = []
            for record in records where record.seq > after && record.seq <= through {
                guard let event = try? EventCodec.decode(record), case .span(let span) = event.body, filter.matches(span) else { continue }
                matching.append(SpanRecord(seq: record.seq, span: span))
            }
            if !matching.isEmpty { try await body(matching) }
            next = last.seq + 1
        }
    }
}
