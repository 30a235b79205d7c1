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
        @Option(help: "Spans per request.") var batch = 100
        @Flag(help: "Print the report as JSON.") var json = false

        struct Report: Codable {
            var clients: Int
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
            let lagged = Atomic<Int>(0)
        }

        func run() async throws {
            let base = ServerURL.resolve(server)
            let url = base.replacingOccurrences(of: "http://", with: "ws://") + "/api/traces/live?source=bench-live"
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
                                    // server, so they read just the two fields they need.
                                    guard frame.opcode == .text else { continue }
                                    let now = Int64(Date().timeIntervalSince1970 * 1_000_000)
                                    let text = String(buffer: frame.data)
                                    if text.hasPrefix(#"{"dropped""#) || text.contains(#""event":"lagged""#) {
                                        let dropped = text.split(separator: ":").dropFirst().first.flatMap { Int($0.prefix { $0.isNumber }) } ?? 0
                                        received.lagged.wrappingAdd(dropped, ordering: .relaxed)
                                        continue
                                    }
                                    guard text.contains(marker), let range = text.range(of: #""sent_us":"#),
                                        let sent = Int(text[range.upperBound...].prefix { $0.isNumber })
                                    else { continue }
                                    received.histogram.withLock { _ = $0.record(UInt64(max(now - Int64(sent), 1))) }
                                    if received.count.wrappingAdd(1, ordering: .relaxed).newValue >= totalSpans * clients { return }
                                }
                            }
                        }
                    }
                    try await group.waitForAll()
                }
            }
            try await Task.sleep(for: .seconds(2))  // let every client connect
            let requestsPerSecond = max(rate / batch, 1)
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
                        + (0..<batch).map { i in
                            #"{"source":"bench-live","operation":"tick","trace_id":"\#(marker)-\#(posted + i)","details":{"run":"\#(marker)","sent_us":\#(sentMicros)}}"#
                        }.joined(separator: ",") + "]"
                    posted += batch
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
                    live stream: \(clients) clients, \(posted) spans posted at \(String(format: "%.0f", report.spansPerSecond))/s
                      delivered   \(report.deliveries) of \(report.expectedDeliveries) (dropped for lagging clients: \(report.lagged))
                      delay       p50 \(formatMicros(d.p50))  p90 \(formatMicros(d.p90))  p99 \(formatMicros(d.p99))  p99.9 \(formatMicros(d.p999))  max \(formatMicros(d.max))
                    """
                )
            }
        }
    }
}
