import CustodyCore
import CustodyLog
import CustodyLogTesting
import Foundation
import NIOCore
import Synchronization
import Testing

/// A clock the test moves by hand.
final class ManualClock: Sendable {
    let value: Mutex<Int64>
    init(_ start: Int64) { value = Mutex(start) }
    func advance(by nanoseconds: Int64) { value.withLock { $0 += nanoseconds } }
    var now: Int64 { value.withLock { $0 } }
}

@Suite struct ActiveSpanCacheTests {
    static let t0: Int64 = 1_793_739_600_000_000_000
    static let minute: Int64 = 60_000_000_000

    static func span(
        _ seq: UInt64,
        trace: String,
        at: Int64,
        source: String = "agent-factory",
        stage: String = "processing",
        spanId: String? = nil
    )
        -> Event
    {
        Event(
            seq: seq,
            ingestedAt: at,
            body: .span(Span(traceId: trace, spanId: spanId ?? "s\(seq)", source: source, stage: stage, operation: "op\(seq)", timestamp: at))
        )
    }

    @Test func capacityEvictsTheOldestFirst() async {
        let clock = ManualClock(Self.t0)
        let cache = ActiveSpanCache(capacity: 10, now: { clock.now })
        await cache.insert((1...25).map { Self.span($0, trace: "t\($0 % 4)", at: Self.t0 + Int64($0)) })
        #expect(await cache.count == 10)
        let active = await cache.active(limit: 100)
        #expect(active.spans.map(\.seq) == Array((16...25).reversed()))
        #expect(await cache.evictedByCapacity == 15)
        #expect(await cache.contains(traceId: "t1", spanId: "s25"))
        #expect(!(await cache.contains(traceId: "t1", spanId: "s1")))
    }

    @Test func spansExpireAfterTheTTLWithoutASweep() async {
        let clock = ManualClock(Self.t0)
        let cache = ActiveSpanCache(ttl: .seconds(15 * 60), now: { clock.now })
        await cache.insert([Self.span(1, trace: "a", at: Self.t0), Self.span(2, trace: "b", at: Self.t0 + 10 * Self.minute)])
        clock.advance(by: 16 * Self.minute)
        // The first span is past the TTL, the second is not.
        #expect(await cache.active().spans.map(\.seq) == [2])
        #expect(await cache.traceCount == 1)
        #expect(!(await cache.contains(traceId: "a", spanId: "s1")))
        clock.advance(by: 10 * Self.minute)
        #expect(await cache.count == 0)
        #expect(await cache.expired == 2)
    }

    @Test func summariesAndDuplicates() async {
        let clock = ManualClock(Self.t0)
        let cache = ActiveSpanCache(now: { clock.now })
        await cache.insert([
            Self.span(1, trace: "t", at: Self.t0 + 5, source: "ui-factory"),
            Self.span(2, trace: "t", at: Self.t0, source: "agent-factory", stage: "error"),
            Self.span(3, trace: "t", at: Self.t0 + 9, source: "ui-factory"),
            Self.span(4, trace: "u", at: Self.t0 + 1, source: "ops-factory"),
        ])
        // The same events again (a re-read) change nothing.
        await cache.insert([Self.span(3, trace: "t", at: Self.t0 + 9, source: "ui-factory")])
        let active = await cache.active(source: "ui-factory")
        #expect(active.spans.map(\.seq) == [3, 1])
        let summary = try! #require(active.traces.first)
        #expect(summary.traceId == "t" && summary.spanCount == 3 && summary.errorCount == 1)
        #expect(summary.rootOperation == "op2" && summary.sources == ["ui-factory", "agent-factory"])
        #expect(await cache.contains(traceId: "t", spanId: "s2"))
        #expect(!(await cache.contains(traceId: "t", spanId: "s9")))
    }

    /// A long log within the TTL: the refill keeps exactly the newest `capacity` spans, as the
    /// cache would have, and reads only the chunks that hold them.
    @Test func refillKeepsTheNewestSpansUpToCapacity() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("custody-cache-\(UUID().uuidString)").path
        defer { removeDataDirectory(directory) }
        let log = try await SegmentLog.open(directory: directory)
        let now = SegmentLog.now()
        var bodies: [EventBody] = []
        for i in 0..<5000 {
            bodies.append(.span(Span(traceId: "t\(i)", spanId: "s", timestamp: now)))
            if i % 3 == 0 { bodies.append(.taskCreated(TaskCreated(uuid: "task\(i)", orderId: "o", payload: JSONText("{}")))) }
        }
        _ = try await log.append(bodies.map(EventCodec.encode))
        let cache = ActiveSpanCache(capacity: 1000)
        try await cache.refill(from: log)
        #expect(await cache.count == 1000)
        #expect(await cache.contains(traceId: "t4999", spanId: "s"))
        #expect(await cache.contains(traceId: "t4000", spanId: "s"))
        #expect(!(await cache.contains(traceId: "t3999", spanId: "s")))
        #expect(await cache.evictedByCapacity < 1100)
        await log.close()
    }

    /// After a restart, the cache comes back from the log's tail: spans within the TTL, not older.
    @Test func refillFromTheLogTail() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("custody-cache-\(UUID().uuidString)").path
        defer { removeDataDirectory(directory) }
        let log = try await SegmentLog.open(directory: directory, configuration: LogConfiguration(segmentBytes: 4096))
        let now = SegmentLog.now()
        for minutesAgo in stride(from: 40, through: 1, by: -1) {
            let at = now - Int64(minutesAgo) * Self.minute
            let body = EventBody.span(Span(traceId: "t\(minutesAgo)", spanId: "s", operation: "m\(minutesAgo)", timestamp: at))
            _ = try await log.append(EventCodec.encode(body), timestamp: at)
        }
        await log.close()
        let reopened = try await SegmentLog.open(directory: directory, configuration: LogConfiguration(segmentBytes: 4096))
        let cache = ActiveSpanCache(ttl: .seconds(15 * 60))
        try await cache.refill(from: reopened)
        // 1 … 14 minutes ago (15 is at the edge and may have just expired).
        let count = await cache.count
        #expect(count == 14 || count == 15)
        #expect(await cache.contains(traceId: "t1", spanId: "s"))
        #expect(await cache.contains(traceId: "t14", spanId: "s"))
        #expect(!(await cache.contains(traceId: "t16", spanId: "s")))
        // And it follows new appends.
        let following = Task { try await cache.follow(reopened, from: await reopened.lastSeq + 1) }
        let appended = try await reopened.append(EventCodec.encode(.span(Span(traceId: "new", spanId: "s", timestamp: SegmentLog.now()))))
        try await cache.waitUntilFollowed(appended.lastSeq, timeout: .seconds(30))
        #expect(await cache.contains(traceId: "new", spanId: "s"))
        following.cancel()
        await reopened.close()
        _ = try? await following.value
    }
}
