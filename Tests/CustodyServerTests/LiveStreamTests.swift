import CustodyCore
import CustodyLog
import CustodyServer
import CustodyServerTesting
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import HummingbirdWSClient
import HummingbirdWSTesting
import NIOCore
import Synchronization
import Testing

/// What a live-stream client received, decoded.
struct LiveMessages: Sendable {
    var spans: [(seq: Int, traceId: String, source: String)] = []
    /// The number of spans in each batched frame (`?batch=1`).
    var frames: [Int] = []
    var lagged: [Int] = []
    var pings = 0
    /// Answers to ``roundTrip(_:_:_:)``'s command.
    var roundTrips = 0
    static let roundTripOp = "round-trip"

    mutating func add(_ text: String) {
        guard let object = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] else {
            Issue.record("not JSON: \(text)")
            return
        }
        switch object["event"] as? String {
        case "trace":
            let data = object["data"] as? [String: Any] ?? [:]
            spans.append((data["seq"] as? Int ?? -1, data["trace_id"] as? String ?? "", data["source"] as? String ?? ""))
        case "traces":
            let data = object["data"] as? [[String: Any]] ?? []
            frames.append(data.count)
            for span in data {
                spans.append((span["seq"] as? Int ?? -1, span["trace_id"] as? String ?? "", span["source"] as? String ?? ""))
            }
        case "lagged": lagged.append(object["dropped"] as? Int ?? 0)
        case "ping": pings += 1
        case "error" where (object["message"] as? String)?.hasPrefix("unknown op \(Self.roundTripOp)") == true: roundTrips += 1
        default: Issue.record("unexpected message \(text)")
        }
    }
}

/// Sends a command the stream does not know and reads until its answer comes: the stream handles
/// a client's commands in order, so every command sent before has then been applied.
func roundTrip(
    _ outbound: WebSocketOutboundWriter,
    _ iterator: inout WebSocketInboundMessageStream.AsyncIterator,
    _ received: borrowing Mutex<LiveMessages>
) async throws {
    let before = received.withLock { $0.roundTrips }
    try await outbound.write(.text(#"{"op":"\#(LiveMessages.roundTripOp)"}"#))
    while received.withLock({ $0.roundTrips }) == before {
        guard case .text(let text)? = try await iterator.next() else { throw CancellationError() }
        received.withLock { $0.add(text) }
    }
}

func record(_ runtime: CoreRuntime, count: Int, source: String = "w", trace: String = "live", padding: Int = 0) async throws {
    let details: JSONValue? = padding > 0 ? .object(["padding": .string(String(repeating: "x", count: padding))]) : nil
    let entries = (0..<count).map { _ in SpanInput(traceId: trace, source: source, operation: "op", details: details) }
    _ = try await runtime.logs.recordLog(.many(entries), request: RequestTrace(traceId: "bench"))
}

let wsConfiguration = WebSocketClientConfiguration(maxFrameSize: 1 << 20)

/// Every span's seq in the log up to its head, in order (the log also holds the signed
/// checkpoints written every 10 s, which are not spans).
func spanSeqsOfLog(_ runtime: CoreRuntime) async throws -> [UInt64] {
    let head = await runtime.log.lastSeq
    var spanSeqs: [UInt64] = []
    var next: UInt64 = 1
    while next <= head {
        let records = try await runtime.log.read(from: next, maxRecords: 4096)
        guard let last = records.last else { break }
        for record in records where record.seq <= head {
            if case .span = try EventCodec.decode(record).body { spanSeqs.append(record.seq) }
        }
        next = last.seq + 1
    }
    return spanSeqs
}
/// Spans appended while a client is stalled.
let stalledTestSpans = 40 * 250

@Suite(.timeLimit(.minutes(1))) struct LiveStreamTests {
    /// `since_seq` replays the log, then the stream continues live: every span exactly once, in
    /// seq order, while appends go on across the switch.
    @Test func catchUpThenLiveWithNoGapAndNoDuplicate() async throws {
        try await ServerFixture.run(.live) { runtime, client in
            try await record(runtime, count: 500)
            let writer = Task {
                for _ in 0..<20 { try await record(runtime, count: 50) }
            }
            let received = Mutex(LiveMessages())
            try await client.ws("/api/traces/live?since_seq=0", configuration: wsConfiguration) { inbound, _, _ in
                for try await message in inbound.messages(maxSize: 1 << 20) {
                    guard case .text(let text) = message else { continue }
                    let done = received.withLock {
                        $0.add(text)
                        return $0.spans.count >= 500 + 1 + 20 * 51
                    }
                    if done { break }
                }
            }
            try await writer.value
            let spans = received.withLock { $0.spans }
            let spanSeqs = try await spanSeqsOfLog(runtime)
            #expect(spans.count == spanSeqs.count)
            #expect(spans.map { UInt64($0.seq) } == spanSeqs)
        }
    }

    @Test func filtersApplyToCatchUpAndLiveAndCanChange() async throws {
        try await ServerFixture.run(.live) { runtime, client in
            try await record(runtime, count: 3, source: "a")
            try await record(runtime, count: 3, source: "b")
            let received = Mutex(LiveMessages())
            try await client.ws("/api/traces/live?since_seq=0&source=a", configuration: wsConfiguration) { inbound, outbound, _ in
                var iterator = inbound.messages(maxSize: 1 << 20).makeAsyncIterator()
                func next() async throws {
                    guard case .text(let text)? = try await iterator.next() else { return }
                    received.withLock { $0.add(text) }
                }
                for _ in 0..<3 { try await next() }
                try await record(runtime, count: 2, source: "b")
                try await record(runtime, count: 1, source: "a")
                try await next()
                try await outbound.write(.text(#"{"op":"filter","source":["b"]}"#))
                // A round trip so that the filter is in place before the next spans.
                try await roundTrip(outbound, &iterator, received)
                try await record(runtime, count: 2, source: "a")
                try await record(runtime, count: 1, source: "b")
                try await next()
            }
            let sources = received.withLock { $0.spans.map(\.source) }
            #expect(sources == ["a", "a", "a", "a", "b"])
        }
    }

    /// A client that stops reading loses spans from its own bounded buffer and is told how many;
    /// another client gets every span, and appends are not held up.
    @Test func aStalledClientLagsAloneAndIsToldHowMuch() async throws {
        var limits = ServerLimits()
        limits.liveClientBuffer = 2048
        try await ServerFixture.run(.live, limits: limits) { runtime, client in
            let fast = Shared(LiveMessages())
            let slow = Shared(LiveMessages())
            let fastDone = Shared(false)
            let appended = stalledTestSpans
            async let fastClient = client.ws("/api/traces/live?source=w", configuration: wsConfiguration) { inbound, _, _ in
                for try await message in inbound.messages(maxSize: 1 << 20) {
                    guard case .text(let text) = message else { continue }
                    let count = fast.withLock { messages in
                        messages.add(text)
                        return messages.spans.count
                    }
                    if count >= stalledTestSpans { break }
                }
                fastDone.withLock { $0 = true }
            }
            async let slowClient = client.ws("/api/traces/live?source=w&source=final", configuration: wsConfiguration) { inbound, _, _ in
                // Stalled until the other client has every span (were the hub held up by this
                // one, that would never happen and the test would time out), then reads what it
                // was left, up to the span appended last.
                while !fastDone.withLock({ $0 }) { try await Task.sleep(for: .milliseconds(50)) }
                for try await message in inbound.messages(maxSize: 1 << 20) {
                    guard case .text(let text) = message else { continue }
                    let last = slow.withLock { messages in
                        messages.add(text)
                        return messages.spans.last?.source
                    }
                    if last == "final" { break }
                }
            }
            // Both clients subscribed before the first span.
            while await runtime.hub.clientCount < 2 { try await Task.sleep(for: .milliseconds(5)) }
            for _ in 0..<40 {
                // 2 KB a span: 20 MB in all, more than the socket buffers between a stalled
                // client and the server can hold.
                try await record(runtime, count: 250, padding: 2048)
                try await Task.sleep(for: .milliseconds(20))
            }
            while !fastDone.withLock({ $0 }) { try await Task.sleep(for: .milliseconds(50)) }
            try await Task.sleep(for: .milliseconds(500))
            try await record(runtime, count: 1, source: "final")
            _ = try await (fastClient, slowClient)
            #expect(fast.withLock { $0.spans.count } == appended)
            let slowMessages = slow.withLock { $0 }
            let dropped = slowMessages.lagged.reduce(0, +)
            #expect(dropped > 0)
            // Every span is either received or counted as dropped: nothing vanishes unreported.
            #expect(slowMessages.spans.count - 1 + dropped == appended)
            #expect(await runtime.hub.droppedTotal == dropped)
        }
    }

    /// Pause stops delivery; resume delivers what arrived meanwhile (read from the log), in order.
    @Test func pauseAndResumeLoseNothing() async throws {
        try await ServerFixture.run(.live) { runtime, client in
            let received = Mutex(LiveMessages())
            try await client.ws("/api/traces/live?source=p", configuration: wsConfiguration) { inbound, outbound, _ in
                var iterator = inbound.messages(maxSize: 1 << 20).makeAsyncIterator()
                try await record(runtime, count: 2, source: "p")
                for _ in 0..<2 {
                    if case .text(let text)? = try await iterator.next() { received.withLock { $0.add(text) } }
                }
                try await outbound.write(.text(#"{"op":"pause"}"#))
                try await roundTrip(outbound, &iterator, received)
                try await record(runtime, count: 5, source: "p")
                try await outbound.write(.text(#"{"op":"resume"}"#))
                for _ in 0..<5 {
                    if case .text(let text)? = try await iterator.next() { received.withLock { $0.add(text) } }
                }
            }
            let seqs = received.withLock { $0.spans.map(\.seq) }
            #expect(seqs.count == 7)
            #expect(seqs == seqs.sorted() && Set(seqs).count == 7)
        }
    }

    @Test func badSinceSeqIsRefusedBeforeTheUpgrade() async throws {
        try await ServerFixture.run(.router) { _, client in
            let response = try await client.call(
                .get,
                "/api/traces/live?since_seq=abc",
                headers: [.upgrade: "websocket", .connection: "Upgrade", .secWebSocketVersion: "13", .secWebSocketKey: "dGhlIHNhbXBsZSBub25jZQ=="]
            )
            #expect(response.status == .unprocessableContent && response.errorField == "since_seq")
        }
    }
}
