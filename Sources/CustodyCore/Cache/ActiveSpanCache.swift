import CustodyLog
import DequeModule

/// The spans of the last few minutes, in memory: what is happening now (`/api/traces/active`),
/// and which (trace_id, span_id) pairs were already taken (OTLP exporters re-send after network
/// failures).
///
/// Rules:
/// - Holds spans whose `ingested_at` is within ``ttl`` of now, at most ``capacity`` of them;
///   oldest out first. Spans are kept in log order, which is `ingested_at` order, so expiry and
///   eviction only ever look at the oldest end: every insert evicts what is due, a few entries at
///   a time — no sweep ever stops ingest.
/// - Per-trace summaries cover the traces that have a span in the cache.
/// - ``refill(from:)`` reads the log's tail (found by the time index) on start, so a restart
///   loses nothing still within the TTL.
public actor ActiveSpanCache: PositionFollower {
    public struct Entry: Sendable, Hashable {
        public var seq: UInt64
        public var ingestedAt: Int64
        public var span: Span
    }

    /// A trace as far as the cache has seen it: its summary, and the cache's own book-keeping.
    struct TrackedTrace {
        var summary: TraceSummaryRecord
        /// Spans of this trace still in the cache.
        var cached: Int
        var lastSeq: UInt64
    }

    public nonisolated let ttl: Duration
    public nonisolated let capacity: Int
    let now: @Sendable () -> Int64
    private var entries = Deque<Entry>()
    private var taken: Set<SpanKey> = []
    private var traces: [String: TrackedTrace] = [:]
    private var appliedSeq: UInt64 = 0
    /// The last seq ``follow(_:from:untilHead:)`` has read (spans or not).
    private var followedSeq: UInt64 = 0
    var waiters = PositionWaiters()
    var followedPosition: UInt64 { max(followedSeq, appliedSeq) }
    public private(set) var evictedByCapacity = 0
    public private(set) var expired = 0

    /// A span's identity, as the dedupe of exports compares it.
    public struct SpanKey: Hashable, Sendable {
        public var traceId: String
        public var spanId: String

        public init(traceId: String, spanId: String) {
            self.traceId = traceId
            self.spanId = spanId
        }
    }

    public init(ttl: Duration = .seconds(15 * 60), capacity: Int = 100_000, now: @escaping @Sendable () -> Int64 = LogTime.now) {
        self.ttl = ttl
        self.capacity = max(1, capacity)
        self.now = now
    }

    var ttlNanoseconds: Int64 { ttl.components.seconds * 1_000_000_000 + ttl.components.attoseconds / 1_000_000_000 }

    /// Adds the spans among `events` (in seq order; events at or before the last one added are
    /// ignored, so feeding the same events twice is harmless).
    public func insert(_ events: [Event]) {
        for event in events where event.seq > appliedSeq {
            appliedSeq = event.seq
            guard case .span(let span) = event.body else { continue }
            entries.append(Entry(seq: event.seq, ingestedAt: event.ingestedAt, span: span))
            if let spanId = span.spanId { taken.insert(SpanKey(traceId: span.traceId, spanId: spanId)) }
            summarize(span, seq: event.seq)
        }
        evictDue()
    }

    private func summarize(_ span: Span, seq: UInt64) {
        if var tracked = traces[span.traceId] {
            tracked.summary.add(span)
            tracked.cached += 1
            tracked.lastSeq = seq
            traces[span.traceId] = tracked
        } else {
            traces[span.traceId] = TrackedTrace(summary: TraceSummaryRecord(span), cached: 1, lastSeq: seq)
        }
    }

    /// Drops expired entries and those over capacity, oldest first.
    private func evictDue() {
        let horizon = now() - ttlNanoseconds
        while let oldest = entries.first, oldest.ingestedAt < horizon || entries.count > capacity {
            if oldest.ingestedAt < horizon { expired += 1 } else { evictedByCapacity += 1 }
            entries.removeFirst()
            if let spanId = oldest.span.spanId { taken.remove(SpanKey(traceId: oldest.span.traceId, spanId: spanId)) }
            if var summary = traces[oldest.span.traceId] {
                summary.cached -= 1
                traces[oldest.span.traceId] = summary.cached == 0 ? nil : summary
            }
        }
    }

    /// Whether a span with this (trace_id, span_id) is in the cache: a re-sent span to acknowledge
    /// without appending it again.
    public func contains(traceId: String, spanId: String) -> Bool {
        evictDue()
        return taken.contains(SpanKey(traceId: traceId, spanId: spanId))
    }

    /// Which of these (trace id, span id) pairs are in the cache, as `trace/span` keys: one call
    /// for a whole export instead of one per span.
    public func taken(_ keys: [SpanKey]) -> Set<SpanKey> {
        evictDue()
        var found: Set<SpanKey> = []
        for key in keys where taken.contains(key) { found.insert(key) }
        return found
    }

    /// The newest spans (of `source` when given), newest first, and the summaries of their traces.
    public func active(source: String? = nil, limit: Int = 100) -> (spans: [Entry], traces: [TraceSummaryRecord]) {
        evictDue()
        var spans: [Entry] = []
        for entry in entries.reversed() where source == nil || entry.span.source == source {
            spans.append(entry)
            if spans.count >= limit { break }
        }
        var seen: Set<String> = []
        let summaries = spans.compactMap { entry -> TraceSummaryRecord? in
            guard seen.insert(entry.span.traceId).inserted else { return nil }
            return traces[entry.span.traceId]?.summary
        }
        return (spans, summaries)
    }

    /// Spans in the cache (expired ones are dropped first).
    public var count: Int {
        evictDue()
        return entries.count
    }

    /// Traces with a span in the cache.
    public var traceCount: Int {
        evictDue()
        return traces.count
    }

    /// Fills the cache from the log's tail: the newest spans ingested within the TTL, at most
    /// ``capacity`` of them — what the cache would hold had it run all along. Reads backwards from
    /// the head in chunks, so a long log within the TTL costs only the chunks that hold them.
    public func refill(from log: any EventLog) async throws {
        let horizon = try await log.firstSeq(atOrAfter: now() - ttlNanoseconds)
        let head = await log.lastSeq
        guard head >= horizon else { return }
        var chunks: [[Event]] = []
        var spans = 0
        var end = head
        while true {
            let wanted = UInt64(max(capacity - spans, 1024))
            let start = end >= horizon + wanted ? end - wanted + 1 : horizon
            var chunk: [Event] = []
            var next = start
            while next <= end {
                let records = try await log.read(from: next, maxRecords: 8192)
                guard let last = records.last else { break }
                chunk += records.filter { $0.seq <= end }.compactMap { try? EventCodec.decode($0) }
                next = last.seq + 1
            }
            spans += chunk.count { if case .span = $0.body { true } else { false } }
            chunks.append(chunk)
            if spans >= capacity || start == horizon { break }
            end = start - 1
        }
        for chunk in chunks.reversed() { insert(chunk) }
    }

    /// Waits until ``follow(_:from:untilHead:)`` has read the log up to `seq` (read-your-writes for
    /// `GET /api/traces/active`); after `timeout`, `overloaded`.
    public func waitUntilFollowed(_ seq: UInt64, timeout: Duration = .seconds(5)) async throws(CoreError) {
        guard await waitForPosition(seq, timeout: timeout) else {
            throw CoreError(.overloaded, "the span cache has not reached seq \(seq) within \(timeout); retry later")
        }
    }

    /// Reads the log from `seq` into the cache, to the head (`untilHead`) or for as long as the
    /// task runs; `observe` sees the events read, each once, before the cache takes them.
    public func follow(
        _ log: any EventLog,
        from seq: UInt64,
        untilHead: Bool = false,
        observe: (@Sendable ([Event]) -> Void)? = nil
    ) async throws {
        var next = seq
        // Everything before `seq` is in the cache already (refilled, or never wanted).
        followedSeq = max(followedSeq, seq - 1)
        waiters.wake(upTo: followedSeq)
        while !Task.isCancelled {
            let records = try await log.read(from: next, maxRecords: 8192)
            guard let last = records.last else {
                if untilHead { return }
                do {
                    _ = try await log.waitForAppend(after: next - 1)
                } catch let error as LogError where error.code == .closed {
                    return
                }
                continue
            }
            let events = records.compactMap { try? EventCodec.decode($0) }
            observe?(events)
            insert(events)
            next = last.seq + 1
            followedSeq = last.seq
            waiters.wake(upTo: followedSeq)
        }
    }
}
