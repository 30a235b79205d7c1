import ArgumentParser
import AsyncHTTPClient
import CustodyLog
import Foundation
import Histogram
import HummingbirdWSClient
import Logging
import NIOCore
import NIOHTTP1
import Synchronization

extension BenchCommand {
    /// `custody bench live`: docs/benchmarks.md P7 — many WebSocket clients on the live stream while
    /// spans are posted at a steady rate; reports the delay from a span's timestamp (set just
    /// before it is posted, so the figure includes the acknowledgement) to its arrival at each
    /// client, and what the clients missed.
    struct Live: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Live-stream delay: N WebSocket clients while spans are posted at a steady rate."
        )

        @Option(help: "The server (default $CUSTODY_SERVER, else http://127.0.0.1:8787).") var server: String?
        @Option(help: "WebSocket clients.") var clients = 100
        @Option(help: "Spans per second posted.") var rate = 10_000
        @Option(help: "Seconds to post for.") var duration = 10
        @Option(name: .customLong("request-spans"), help: "Spans per request.") var requestSpans = 100
        @Flag(help: "Clients ask for batched frames (?batch=1): every span since the last frame, at most one frame per 20 ms.")
        var batch = false
        @Flag(help: "Print the report as JSON.") var json = false

        struct Report: Codable {
            var clients: Int
            var batchedFrames: Bool
            /// Frames the clients received, in all.
            var frames: Int
            var spansPosted: Int
            var spansPerSecond: Double
            var deliveries: Int
            var expectedDeliveries: Int
            var lagged: Int
            /// From the span's timestamp (just before posting) to its arrival at a client.
            var delayMicroseconds: LatencySummary
        }

        final class Received: Sendable {
            let histogram = Mutex(Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three))
            let count = Atomic<Int>(0)
            let frames = Atomic<Int>(0)
            let lagged = Atomic<Int>(0)
        }

        func run() async throws {
            let base = ServerURL.resolve(server)
            let url = base.replacingOccurrences(of: "http://", with: "ws://") + "/api/traces/live?source=bench-live" + (batch ? "&batch=1" : "")
            let received = Received()
            let marker = "bench-live-\(UUID().uuidString.prefix(8))"
            let totalSpans = rate * duration
            let listeners = Task {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for _ in 0..<clients {
                        group.addTask {
                            try await WebSocketClient.connect(
                                url: url,
                                configuration: .init(maxFrameSize: 1 << 20),
                                logger: Logger(label: "bench.live")
                            ) { inbound, _, _ in
                                for try await frame in inbound {
                                    // Light on purpose: the clients share the machine with the
                                    // server, so they scan for the two fields they need.
                                    guard frame.opcode == .text else { continue }
                                    let now = Int64(Date().timeIntervalSince1970 * 1_000_000)
                                    received.frames.wrappingAdd(1, ordering: .relaxed)
                                    if let dropped = LiveFrameScan.dropped(in: frame.data) {
                                        received.lagged.wrappingAdd(dropped, ordering: .relaxed)
                                        continue
                                    }
                                    // One span a frame, or many (`?batch=1`): each span's sent_us,
                                    // found in the frame's bytes without making a String of them.
                                    let delays = LiveFrameScan.sentMicroseconds(in: frame.data).map { UInt64(max(now - $0, 1)) }
                                    guard !delays.isEmpty else { continue }
                                    received.histogram.withLock { histogram in
                                        for delay in delays { _ = histogram.record(delay) }
                                    }
                                    if received.count.wrappingAdd(delays.count, ordering: .relaxed).newValue >= totalSpans * clients { return }
                                }
                            }
                        }
                    }
                    try await group.waitForAll()
                }
            }
            try await Task.sleep(for: .seconds(2))  // let every client connect
            let requestsPerSecond = max(rate / requestSpans, 1)
            let interval = Duration.nanoseconds(1_000_000_000 / requestsPerSecond)
            let started = ContinuousClock.now
            var posted = 0
            var next = started
            try await withThrowingTaskGroup(of: Void.self) { group in
                var inFlight = 0
                while posted < totalSpans {
                    next = next + interval
                    try await Task.sleep(until: next)
                    let sentMicros = Int64(Date().timeIntervalSince1970 * 1_000_000)
                    let body =
                        "["
                        + (0..<requestSpans).map { i in
                            #"{"source":"bench-live","operation":"tick","trace_id":"\#(marker)-\#(posted + i)","details":{"run":"\#(marker)","sent_us":\#(sentMicros)}}"#
                        }.joined(separator: ",") + "]"
                    posted += requestSpans
                    if inFlight >= 64 {
                        try await group.next()
                        inFlight -= 1
                    }
                    inFlight += 1
                    group.addTask {
                        var request = HTTPClientRequest(url: base + "/api/logs")
                        request.method = .POST
                        request.headers.add(name: "content-type", value: "application/json")
                        request.body = .bytes(ByteBuffer(string: body))
                        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
                        _ = try await response.body.collect(upTo: 1 << 20)
                    }
                }
                try await group.waitForAll()
            }
            let elapsed = (ContinuousClock.now - started).inSeconds
            // Give the stream time to deliver the last spans.
            let deadline = ContinuousClock.now + .seconds(10)
            while received.count.load(ordering: .relaxed) < totalSpans * clients, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(100))
            }
            listeners.cancel()
            let report = Report(
                clients: clients,
                batchedFrames: batch,
                frames: received.frames.load(ordering: .relaxed),
                spansPosted: posted,
                spansPerSecond: Double(posted) / elapsed,
                deliveries: received.count.load(ordering: .relaxed),
                expectedDeliveries: posted * clients,
                lagged: received.lagged.load(ordering: .relaxed),
                delayMicroseconds: LatencySummary(received.histogram.withLock { $0 })
            )
            if json {
                print(try encodeJSON(report))
            } else {
                let d = report.delayMicroseconds
                print(
                    """
                    live stream: \(clients) clients\(batch ? " (batched frames)" : ""), \(posted) spans posted at \(String(format: "%.0f", report.spansPerSecond))/s
                      delivered   \(report.deliveries) of \(report.expectedDeliveries) in \(report.frames) frames (dropped for lagging clients: \(report.lagged))
                      delay       p50 \(formatMicros(d.p50))  p90 \(formatMicros(d.p90))  p99 \(formatMicros(d.p99))  p99.9 \(formatMicros(d.p999))  max \(formatMicros(d.max))
                    """
                )
            }
        }
    }
}

/// What `bench live`'s clients read of a frame, straight from its bytes: they share the machine
/// with the server, so they must cost far less than it does.
enum LiveFrameScan {
    private static let sentKey = Array(#""sent_us":"#.utf8)
    private static let laggedKey = Array(#""event":"lagged""#.utf8)
    private static let droppedKey = Array(#""dropped":"#.utf8)

    /// The spans a `lagged` notice reports dropped; nil for any other frame.
    static func dropped(in buffer: ByteBuffer) -> Int? {
        buffer.withUnsafeReadableBytes { bytes in
            // A notice is short; a frame of spans starts with `{"event":"trace`.
            guard bytes.count < 128, firstIndex(of: laggedKey, in: bytes, from: 0) != nil,
                let at = firstIndex(of: droppedKey, in: bytes, from: 0)
            else { return nil }
            return number(in: bytes, at: at + droppedKey.count).map(Int.init)
        }
    }

    /// Every `"sent_us":N` in the frame, in order.
    static func sentMicroseconds(in buffer: ByteBuffer) -> [Int64] {
        buffer.withUnsafeReadableBytes { bytes in
            var values: [Int64] = []
            var from = 0
            while let at = firstIndex(of: sentKey, in: bytes, from: from) {
                from = at + sentKey.count
                if let value = number(in: bytes, at: from) { values.append(value) }
            }
            return values
        }
    }

    private static func number(in bytes: UnsafeRawBufferPointer, at start: Int) -> Int64? {
        var value: Int64 = 0
        var index = start
        while index < bytes.count, bytes[index] >= UInt8(ascii: "0"), bytes[index] <= UInt8(ascii: "9") {
            value = value * 10 + Int64(bytes[index] - UInt8(ascii: "0"))
            index += 1
        }
        return index > start ? value : nil
    }

    private static func firstIndex(of key: [UInt8], in bytes: UnsafeRawBufferPointer, from start: Int) -> Int? {
        guard let base = bytes.baseAddress else { return nil }
        var at = start
        while at + key.count <= bytes.count {
            // memchr for the key's first byte, then the rest compared.
            guard let found = memchr(base + at, Int32(key[0]), bytes.count - at - key.count + 1) else { return nil }
            let index = base.distance(to: UnsafeRawPointer(found))
            if key.withUnsafeBytes({ memcmp(base + index, $0.baseAddress!, key.count) }) == 0 { return index }
            at = index + 1
        }
        return nil
    }
}
