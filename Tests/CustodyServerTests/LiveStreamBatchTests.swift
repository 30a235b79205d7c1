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

/// Batched live frames (`?batch=1`, docs/api.md "Live stream"): every span once, in seq order, in
/// frames of at most 1,000; one encoding per frame shared by the clients with the same filter; a
/// stalled batched client loses only from its own buffer and is told how much.
@Suite(.timeLimit(.minutes(1))) struct LiveStreamBatchTests {
    @Test func batchedFramesCarryEverySpanOnceInSeqOrder() async throws {
        try await ServerFixture.run(.live) { runtime, client in
            try await record(runtime, count: 2500)
            let writer = Task {
                for _ in 0..<20 { try await record(runtime, count: 50) }
            }
            let received = Mutex(LiveMessages())
            try await client.ws("/api/traces/live?since_seq=0&batch=1", configuration: wsConfiguration) { inbound, _, _ in
                for try await message in inbound.messages(maxSize: 1 << 20) {
                    guard case .text(let text) = message else { continue }
                    let done = received.withLock {
                        $0.add(text)
                        return $0.spans.count >= 2500 + 1 + 20 * 51
                    }
                    if done { break }
                }
            }
            try await writer.value
            let seqs: [UInt64] = received.withLock { $0.spans.map { UInt64($0.seq) } }
            let frames: [Int] = received.withLock { $0.frames }
            let spanSeqs = try await spanSeqsOfLog(runtime)
            let sameSeqs = seqs == spanSeqs
            #expect(sameSeqs)
            let largest = frames.max() ?? 0
            let smallest = frames.min() ?? 0
            #expect(smallest >= 1 && largest <= LiveHub.maxFrameSpans)
            // The catch-up alone needs at least three frames of at most 1,000; the whole stream
            // far fewer frames than spans.
            #expect(frames.count >= 3)
            #expect(frames.count < seqs.count / 10)
        }
    }

    @Test func batchMustBeOneOrZero() async throws {
        try await ServerFixture.run(.router) { _, client in
            let response = try await client.call(
                .get,
                "/api/traces/live?batch=yes",
                headers: [.upgrade: "websocket", .connection: "Upgrade", .secWebSocketVersion: "13", .secWebSocketKey: "dGhlIHNhbXBsZSBub25jZQ=="]
            )
            #expect(response.status == .unprocessableContent && response.errorField == "batch")
        }
    }

    /// A hub of its own on the runtime's log, with an encoding that counts its calls: clients with
    /// one filter get the very same frames, encoded once; a client with another filter gets its
    /// own; a stalled client drops from its own buffer only, and every span is either received or
    /// reported dropped.
    @Test func clientsWithOneFilterShareEachFrameAndItsEncoding() async throws {
        try await ServerFixture.run(.live) { runtime, _ in
            let encodings = Atomic<Int>(0)
            let encoding = LiveEncoding(
                span: { _ in ByteBuffer() },
                batch: { records in
                    encodings.wrappingAdd(1, ordering: .relaxed)
                    return ByteBuffer(string: records.map { String($0.seq) }.joined(separator: ","))
                }
            )
            let hub = LiveHub(log: runtime.log, startingAfter: await runtime.log.lastSeq, encoding: encoding)
            let hubTask = Task { try await hub.run() }
            defer { hubTask.cancel() }
            let filter = LiveFilter(sources: ["s"])
            let first = await hub.subscribe(filter: filter, batched: true)
            let second = await hub.subscribe(filter: filter, batched: true)
            let other = await hub.subscribe(filter: LiveFilter(sources: ["o"]), batched: true)
            // 256 spans of buffer: 4 frames.
            let stalled = await hub.subscribe(filter: filter, bufferSize: 256, batched: true)
            var firstFrames: [LiveHub.Frame] = []
            var secondFrames: [LiveHub.Frame] = []
            var firstIterator = first.messages.makeAsyncIterator()
            var secondIterator = second.messages.makeAsyncIterator()
            let rounds = 12
            for round in 0..<rounds {
                // Each append waits for the one before to arrive: a frame each.
                try await record(runtime, count: 3, source: "s", trace: "share-\(round)")
                try await record(runtime, count: 1, source: "o", trace: "share-\(round)")
                while firstFrames.reduce(0, { $0 + $1.records.count }) < 3 * (round + 1) {
                    guard case .frame(let frame)? = await firstIterator.next() else {
                        Issue.record("first: not a frame")
                        return
                    }
                    firstFrames.append(frame)
                }
                while secondFrames.reduce(0, { $0 + $1.records.count }) < 3 * (round + 1) {
                    guard case .frame(let frame)? = await secondIterator.next() else {
                        Issue.record("second: not a frame")
                        return
                    }
                    secondFrames.append(frame)
                }
            }
            #expect(firstFrames.count >= rounds)
            #expect(firstFrames.map { $0.records.map(\.seq) } == secondFrames.map { $0.records.map(\.seq) })
            // The same bytes, and the same storage: encoded once for both.
            for (a, b) in zip(firstFrames, secondFrames) {
                #expect(a.encoded == b.encoded)
                let pointers = (
                    a.encoded.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) },
                    b.encoded.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
                )
                #expect(pointers.0 == pointers.1)
            }
            // The stalled client took as many frames as its buffer holds and dropped the rest.
            #expect(await hub.droppedTotal > 0)
            var otherIterator = other.messages.makeAsyncIterator()
            var otherSpans = 0
            var otherFrames = 0
            while otherSpans < rounds {
                guard case .frame(let frame)? = await otherIterator.next() else {
                    Issue.record("other: not a frame")
                    return
                }
                #expect(frame.records.allSatisfy { $0.span.source == "o" })
                otherSpans += frame.records.count
                otherFrames += 1
            }
            #expect(otherSpans == rounds)
            // The frames of "s" were encoded once each, whatever the number of its clients.
            #expect(encodings.load(ordering: .relaxed) == firstFrames.count + otherFrames)
            // The stalled client reads what it kept, then gets a final frame after being told
            // what it missed: nothing vanishes unreported.
            var stalledIterator = stalled.messages.makeAsyncIterator()
            var kept = 0
            for _ in 0..<4 {
                guard case .frame(let frame)? = await stalledIterator.next() else {
                    Issue.record("stalled: not a frame")
                    return
                }
                kept += frame.records.count
            }
            try await record(runtime, count: 1, source: "s", trace: "final")
            guard case .lagged(let dropped)? = await stalledIterator.next() else {
                Issue.record("stalled: no lagged notice")
                return
            }
            guard case .frame(let last)? = await stalledIterator.next() else {
                Issue.record("stalled: no final frame")
                return
            }
            #expect(kept + dropped == 3 * rounds)
            #expect(last.records.map(\.span.traceId) == ["final"])
        }
    }
}
