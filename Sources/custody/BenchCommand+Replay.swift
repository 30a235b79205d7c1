import ArgumentParser
import AsyncHTTPClient
import CustodyCore
import CustodyLog
import CustodyServer
import Foundation
import Histogram
import Hummingbird
import HummingbirdWSClient
import Logging
import NIOCore
import NIOHTTP1
import ServiceLifecycle
import Synchronization

extension BenchCommand {
    /// `custody bench replay`: docs/benchmarks.md P6 — a 1,000-span trace spread evenly through a
    /// 10,000,000-event log (one span in every stretch of 10,000 events, at a scattered place in it:
    /// every span in a different batch, the worst case for reading it back). Builds that data directory once (kept for later runs),
    /// starts the server on it in this process, then measures over HTTP: `GET /api/traces/{id}`
    /// latency, and for dry-run replays the delay from sending the request to the arrival of the
    /// replay's first event (`replay_start`) on the live stream, and the whole replay.
    struct Replay: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Trace fetch and replay of a large trace in a large log (P6); builds the data directory when needed."
        )

        @Option(name: .customLong("data-dir"), help: "The data directory (built when it holds fewer events; kept).")
        var dataDirectory = "./custody-bench-p6"
        @Option(help: "Events in the log.") var events = 10_000_000
        @Option(name: .customLong("trace-spans"), help: "Spans of the trace fetched and replayed.") var traceSpans = 1_000
        @Option(name: .customLong("batch-bytes"), help: "When building the log: its batches' uncompressed size (the log's default, 64 KiB).")
        var batchBytes = 64 << 10
        @Option(help: "Trace fetches measured.") var fetches = 200
        @Option(help: "Replays measured.") var replays = 20
        @Option(help: "Keep the projections in PostgreSQL at this URL (postgresql://user@host:port/db[?schema=NAME]) instead of the data directory.")
        var projections: String?
        @Flag(help: "Print the report as JSON.") var json = false

        static let traceId = "p6-trace"

        struct Report: Codable {
            var events: UInt64
            var traceSpans: Int
            var startupSeconds: Double
            var fetchMicroseconds: LatencySummary
            var firstReplayEventMicroseconds: LatencySummary
            var replayMicroseconds: LatencySummary
        }

        func validate() throws {
            guard events >= 2 * traceSpans, traceSpans >= 1, traceSpans <= 10_000 else {
                throw ValidationError("--trace-spans must be 1–10000 and at most half of --events")
            }
            guard fetches >= 1, replays >= 1 else { throw ValidationError("--fetches and --replays must be at least 1") }
            guard (1 << 10)...(32 << 20) ~= batchBytes else { throw ValidationError("--batch-bytes must be 1 KiB–32 MiB") }
        }

        func run() async throws {
            try FileManager.default.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true)
            try await awaitingCleanErrors { try await fill() }
            guard let projections else { return try await measure(store: nil) }
            let location = try withCleanErrors { try PostgreSQLLocation(url: projections) }
            try await awaitingCleanErrors {
                try await PostgreSQLProjectionStore.withStore(at: location, logger: Logger(label: "custody.bench")) { store in
                    try await measure(store: store)
                }
            }
        }

        func measure(store: (any ProjectionStore)?) async throws {
            let clock = ContinuousClock()
            let opened = clock.now
            let logger = Logger(label: "custody.bench")
            let runtime = try await awaitingCleanErrors {
                try await CoreRuntime.open(directory: dataDirectory, store: store, logger: logger, liveEncoding: CustodyApplication.liveEncoding)
            }
            let startup = (clock.now - opened).inSeconds
            let events = await runtime.log.lastSeq
            let (portStream, portContinuation) = AsyncStream<Int>.makeStream()
            let app = try CustodyApplication.application(
                runtime: runtime,
                configuration: ServerConfiguration(host: "127.0.0.1", port: 0),
                logger: logger
            ) {
                portContinuation.yield($0)
            }
            let server = Task { try await app.runService() }
            var ports = portStream.makeAsyncIterator()
            guard let port = await ports.next() else { throw ExitCode(1) }
            let base = "http://127.0.0.1:\(port)"
            defer { server.cancel() }

            // Trace fetches, one after the other.
            var fetch = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
            for round in 0..<(fetches + 5) {
                let started = clock.now
                let response = try await HTTPClient.shared.execute(
                    HTTPClientRequest(url: "\(base)/api/traces/\(Self.traceId)"),
                    timeout: .seconds(30)
                )
                let body = try await response.body.collect(upTo: 64 << 20)
                guard response.status == .ok else {
                    printError("custody: the trace fetch answered \(response.status.code): \(String(buffer: body).prefix(200))")
                    throw ExitCode(1)
                }
                // The first few warm the connection and the page cache.
                if round >= 5 { _ = fetch.record(UInt64(max((clock.now - started).inSeconds * 1e6, 1))) }
            }

            // Replays, with a live-stream client waiting for each one's replay_start.
            let (arrivals, arrival) = AsyncStream<ContinuousClock.Instant>.makeStream()
            let url = "ws://127.0.0.1:\(port)/api/traces/live?stage=replay_start"
            let listener = Task {
                try await WebSocketClient.connect(url: url, configuration: .init(maxFrameSize: 1 << 22), logger: logger) { inbound, _, _ in
                    for try await frame in inbound where frame.opcode == .text {
                        let now = ContinuousClock.now
                        if String(buffer: frame.data).contains(Self.traceId) { arrival.yield(now) }
                    }
                }
            }
            defer { listener.cancel() }
            try await Task.sleep(for: .milliseconds(500))  // connected
            var firstEvent = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
            var whole = Histogram<UInt64>(highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: .three)
            var arrived = arrivals.makeAsyncIterator()
            for _ in 0..<replays {
                var request = HTTPClientRequest(url: "\(base)/api/traces/replay/\(Self.traceId)")
                request.method = .POST
                request.headers.add(name: "content-type", value: "application/json")
                request.body = .bytes(ByteBuffer(string: #"{"mode":"dry-run"}"#))
                let started = clock.now
                let response = try await HTTPClient.shared.execute(request, timeout: .seconds(120))
                let body = try await response.body.collect(upTo: 1 << 20)
                let finished = clock.now
                guard response.status == .ok else {
                    printError("custody: the replay answered \(response.status.code): \(String(buffer: body).prefix(200))")
                    throw ExitCode(1)
                }
                guard let first = await arrived.next() else { throw ExitCode(1) }
                _ = firstEvent.record(UInt64(max((first - started).inSeconds * 1e6, 1)))
                _ = whole.record(UInt64(max((finished - started).inSeconds * 1e6, 1)))
            }
            let report = Report(
                events: events,
                traceSpans: traceSpans,
                startupSeconds: startup,
                fetchMicroseconds: LatencySummary(fetch),
                firstReplayEventMicroseconds: LatencySummary(firstEvent),
                replayMicroseconds: LatencySummary(whole)
            )
            if json {
                print(try encodeJSON(report))
            } else {
                func line(_ name: String, _ d: LatencySummary) -> String {
                    "  \(name) p50 \(formatMicros(d.p50))  p90 \(formatMicros(d.p90))  p99 \(formatMicros(d.p99))  max \(formatMicros(d.max))"
                }
                print(
                    """
                    P6 on \(dataDirectory): a \(traceSpans)-span trace in a log of \(events) events (start-up \(String(format: "%.2f", startup)) s)
                    \(line("GET /api/traces/{id}  ", report.fetchMicroseconds))
                    \(line("first replay event    ", report.firstReplayEventMicroseconds))
                    \(line("whole dry-run replay  ", report.replayMicroseconds))
                    """
                )
            }
        }

        /// Appends span events until the log holds `events`: traces of 8 spans from five
        /// factories, and one span of ``traceId`` in every stretch of `events / traceSpans` events.
        func fill() async throws {
            let log = try await SegmentLog.open(directory: dataDirectory, configuration: LogConfiguration(fsync: .never, batchBytes: batchBytes))
            var next = await log.lastSeq + 1
            let target = UInt64(events)
            guard next <= target else {
                await log.close()
                return
            }
            let every = UInt64(events / traceSpans)
            let sources = ["agent-factory", "data-factory", "services-factory", "ui-factory", "ops-factory"]
            let stages = ["before_rpc", "after_rpc", "processing", "request_received", "response_sent"]
            let origin = SegmentLog.now() - Int64(events) * 1_000
            let clock = ContinuousClock()
            let started = clock.now
            let progress = ProgressLine(total: Int(target - next + 1), unit: "events")
            while next <= target {
                let count = Int(min(10_000, target - next + 1))
                var payloads: [ByteBuffer] = []
                payloads.reserveCapacity(count)
                for seq in next..<(next + UInt64(count)) {
                    // One span of the trace in each stretch of `every` events, at a scattered
                    // place in it (not always the last record of a batch, as a place fixed to the
                    // appends of 10,000 would make it).
                    let stretch = seq / every
                    let inTrace = seq % every == (stretch &* 2_654_435_761) % (every - 1) + 1 && stretch < UInt64(traceSpans)
                    let span = Span(
                        traceId: inTrace ? Self.traceId : "bench-\(seq / 8)",
                        spanId: String(seq, radix: 16),
                        source: sources[Int(seq % 5)],
                        stage: stages[Int(seq % 5)],
                        operation: "op-\(seq % 40)",
                        durationMs: Double(seq % 97),
                        // A microsecond apart: the whole log spans `events` microseconds.
                        timestamp: origin + Int64(seq) * 1_000,
                        details: JSONText(#"{"order_id":"order-\#(seq % 1000)","attempt":\#(seq % 3),"note":"generated by custody bench replay"}"#)
                    )
                    payloads.append(EventCodec.encode(.span(span)))
                }
                _ = try await log.append(payloads)
                next += UInt64(count)
                progress.advance(by: count)
            }
            progress.finish()
            await log.close()
            printError(String(format: "built %d events in %.1f s", events, (clock.now - started).inSeconds))
        }
    }
}
