import ArgumentParser
import CustodyCore
import CustodyJetStream
import CustodyLog
import CustodyLogTesting
import Foundation
import Histogram
import Logging
import NIOCore

struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Load tests with a report.",
        subcommands: [Ingest.self, Startup.self, Live.self, Replay.self, Compare.self]
    )

    struct Ingest: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Append span events and report events/s, MB/s, acknowledgement latency, bytes on disk and compression.",
            discussion: """
                --server URL posts batches of spans to a running server's POST /api/logs (docs/benchmarks.md P2 and, \
                with --batch 1, P3) and reads its projection lag, disk use and compression from \
                /api/admin/stats. --in-process appends straight to a segment log in this process. Without \
                --data-dir the in-process log goes in a temporary directory that is removed afterwards.
                """
        )

        @Flag(name: .customLong("in-process"), help: "Append to a log in this process.") var inProcess = false
        @Option(help: "Post to the server at this URL (e.g. http://127.0.0.1:8787).") var server: String?
        @Option(help: "With --server: send for this many seconds instead of --events.") var duration: Int?
        @Flag(help: "With --server: OTLP/HTTP protobuf exports to /v1/traces (--batch spans each) instead of /api/logs.") var otlp = false
        @Option(help: "With --server: also send the same spans as gRPC recordLog calls to this HOST:PORT, in the same run, and compare.")
        var rpc: String?
        @Option(
            name: .customLong("otlp-grpc"),
            help:
                "With --server and --otlp: also send the same exports to OTLP/gRPC at this HOST:PORT (e.g. 127.0.0.1:4317), in the same run, and compare."
        )
        var otlpGRPC: String?
        @Option(
            name: .customLong("otlp-grpc-connections"),
            help: "With --otlp-grpc: spread the streams over this many HTTP/2 connections (default 1)."
        )
        var otlpGRPCConnections = 1
        @Option(name: .customLong("data-dir"), help: "Append to the log in this directory (kept).") var dataDirectory: String?
        @Option(
            name: .customLong("log"),
            help: "With --in-process: append to a JetStream stream on these NATS servers (nats://host:port,…) instead of a segment log."
        )
        var logURLs: String?
        @Option(help: "With --log: the stream (default CUSTODY_BENCH; made when missing, never CUSTODY's own by accident).")
        var stream = "CUSTODY_BENCH"
        @Option(help: "With --log: the stream's replicas.") var replicas = 3
        @Option(help: "How many events to append.") var events = 1_000_000
        @Option(help: "Events per append call.") var batch = 100
        @Option(help: "Concurrent appenders.") var concurrency = 64
        @Option(help: "Bytes per event (span-like JSON).") var eventBytes = 256
        @Option(help: "Spans per trace (consecutive spans of one appender share a trace).") var spansPerTrace = 8
        @Option(help: "fsync policy: always, interval=MS or never.") var fsync = "always"
        @Flag(help: "Run the projections alongside ingest and report their throughput and lag.") var project = false
        @Flag(
            name: .customLong("no-graph"),
            help: "With --project into SQLite: leave the custody graph out of the projections, to measure what it costs."
        ) var noGraph = false
        @Option(help: "With --project: keep the projections in PostgreSQL at this URL (postgresql://user@host:port/db[?schema=NAME]).")
        var projections: String?
        @Option(help: "With --in-process: append at this many events/s in all (paced), not as fast as the log takes them.")
        var rate: Double?
        @Option(
            help:
                "With --in-process: the hash chain and signed checkpoints (a log.checkpoint every 10 s and every 16,384 events, as the server writes them), on or off."
        )
        var chain: Switch = .on
        @Option(
            help:
                "With --in-process: segment dictionaries (small batches compressed against the log's recent data; docs/log-format.md), on or off."
        )
        var dictionary: Switch = .on
        @Flag(
            name: .customLong("compare-chain"),
            help: "With --in-process: measure with the chain and checkpoints off and on, alternately, --rounds times each, and compare (P13)."
        )
        var compareChain = false
        @Option(help: "With --compare-chain: how many runs of each.") var rounds = 3
        @Flag(help: "Print the report as JSON.") var json = false

        enum Switch: String, ExpressibleByArgument, Codable {
            case on, off
        }

        func validate() throws {
            if compareChain, !inProcess || rounds < 1 {
                throw ValidationError("--compare-chain goes with --in-process, and --rounds with at least 1")
            }
            guard inProcess != (server != nil) else {
                throw ValidationError("say either --server URL (through the HTTP API) or --in-process (straight to a log)")
            }
            if rpc != nil, server == nil || otlp {
                throw ValidationError("--rpc goes with --server (and not --otlp): it compares gRPC with POST /api/logs")
            }
            if logURLs != nil, !inProcess || compareChain || project {
                throw ValidationError("--log goes with --in-process (and not --compare-chain or --project)")
            }
            guard otlpGRPCConnections >= 1 else { throw ValidationError("--otlp-grpc-connections must be at least 1") }
            if otlpGRPC != nil, server == nil || !otlp {
                throw ValidationError("--otlp-grpc goes with --server and --otlp: it compares OTLP/gRPC with OTLP/HTTP")
            }
            if let duration, duration <= 0 || server == nil { throw ValidationError("--duration takes a positive number of seconds, with --server") }
            guard events > 0, batch > 0, concurrency > 0, eventBytes > 0, spansPerTrace > 0 else {
                throw ValidationError("--events, --batch, --concurrency, --event-bytes and --spans-per-trace must be positive")
            }
            if let rate, rate <= 0 || !inProcess { throw ValidationError("--rate takes a positive number of events/s, with --in-process") }
            if noGraph && (!project || projections != nil) { throw ValidationError("--no-graph goes with --project into SQLite") }
            if let projections {
                guard project else { throw ValidationError("--projections goes with --project") }
                do {
                    _ = try PostgreSQLLocation(url: projections)
                } catch {
                    throw ValidationError(error.message)
                }
            }
            guard FsyncPolicy(fsync) != nil else { throw ValidationError("--fsync takes always, interval=MS or never") }
        }

        func run() async throws {
            if let server {
                let report = try await awaitingCleanErrors { try await measureServer(server) }
                if let otlpGRPC {
                    // OTLP/HTTP, OTLP/gRPC, OTLP/HTTP again (new ids each time, so nothing is
                    // deduplicated): the gRPC run is compared with the mean of the two around
                    // it, which cancels the log and the projections growing during the run.
                    let overGRPC = try await awaitingCleanErrors { try await measureOTLPGRPC(otlpGRPC, base: server, seed: 43) }
                    let after = try await awaitingCleanErrors { try await measureServer(server, seed: 44) }
                    let httpRate = (report.spansPerSecond + after.spansPerSecond) / 2
                    if json {
                        print(try encodeJSON(["otlp_http": report, "otlp_grpc": overGRPC, "otlp_http_again": after]))
                    } else {
                        print(report.text + "\n" + overGRPC.text + "\n" + after.text)
                        print(
                            "OTLP/gRPC / OTLP/HTTP: \(String(format: "%.2f", overGRPC.spansPerSecond / httpRate))× the spans/s (\(String(format: "%.0f", overGRPC.spansPerSecond)) vs \(String(format: "%.0f", httpRate)), the mean of the HTTP runs before and after), p99 \(formatMicros(overGRPC.latencyMicroseconds.p99)) vs \(formatMicros(max(report.latencyMicroseconds.p99, after.latencyMicroseconds.p99)))"
                        )
                    }
                    return
                }
                guard let rpc else {
                    print(json ? try encodeJSON(report) : report.text)
                    return
                }
                let overRPC = try await awaitingCleanErrors { try await measureRPC(rpc, base: server) }
                let ratio = overRPC.spansPerSecond / report.spansPerSecond
                if json {
                    print(try encodeJSON(["http": report, "grpc": overRPC]))
                } else {
                    print(report.text + "\n" + overRPC.text)
                    print(
                        "gRPC / HTTP: \(String(format: "%.2f", ratio))× the spans/s, p99 \(formatMicros(overRPC.latencyMicroseconds.p99)) vs \(formatMicros(report.latencyMicroseconds.p99))"
                    )
                }
                return
            }
            let temporary = dataDirectory == nil
            let directory = dataDirectory ?? FileManager.default.temporaryDirectory.appendingPathComponent("custody-bench-\(UUID().uuidString)").path
            defer { if temporary { try? FileManager.default.removeItem(atPath: directory) } }
            if (project || compareChain) && temporary {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            }
            if compareChain {
                try await compareChains(in: directory, keep: !temporary)
                return
            }
            let report = try await awaitingCleanErrors {
                guard let projections else { return try await measure(directory: directory, chain: chain == .on, store: nil) }
                return try await PostgreSQLProjectionStore.withStore(
                    at: try PostgreSQLLocation(url: projections),
                    logger: Logger(label: "custody.bench")
                ) {
                    store in
                    try await measure(directory: directory, chain: chain == .on, store: store)
                }
            }
            if json {
                print(try encodeJSON(report))
            } else {
                print(report.text)
            }
        }

        /// `store`: the projections of `--project` when not SQLite in `directory` (left open).
        func measure(directory: String, chain: Bool, store external: (any ProjectionStore)? = nil) async throws -> IngestReport {
            var configuration = LogConfiguration(fsync: FsyncPolicy(fsync)!)
            configuration.hashChain = chain
            configuration.compressionDictionary = dictionary == .on
            let log: any EventLog
            if let logURLs {
                log = try await JetStreamLog.open(
                    JetStreamLog.Configuration(
                        urls: logURLs,
                        stream: stream,
                        replicas: replicas,
                        nodeName: "bench-\(ProcessInfo.processInfo.processIdentifier)"
                    )
                )
            } else {
                log = try await SegmentLog.open(directory: directory, configuration: configuration)
            }
            let before = await log.status()
            // Events are made before the clock starts: the figure is the log's, not the generator's.
            // Each is span JSON of about --event-bytes, validated as the API would, then encoded.
            let appendsPerAppender = (events + batch * concurrency - 1) / (batch * concurrency)
            // One generating task per appender (each with its own seed), on every core.
            let (batch, eventBytes, spansPerTrace) = (batch, eventBytes, spansPerTrace)
            let generated = try await withThrowingTaskGroup(of: (appender: Int, appends: [[ByteBuffer]], rawBytes: Int).self) { group in
                for appender in 0..<concurrency {
                    group.addTask {
                        var random = SplitMix64(seed: UInt64(appender) + 1)
                        let decoder = JSONDecoder()
                        var rawBytes = 0
                        var appends: [[ByteBuffer]] = []
                        for call in 0..<appendsPerAppender {
                            var payloads: [ByteBuffer] = []
                            for i in 0..<batch {
                                let json = SamplePayloads.span(
                                    call * batch + i,
                                    size: eventBytes,
                                    spansPerTrace: spansPerTrace,
                                    traceSalt: UInt64(appender) << 40,
                                    random: &random
                                )
                                rawBytes += json.readableBytes
                                let input = try decoder.decode(SpanInput.self, from: Data(json.readableBytesView))
                                let span = try input.validated(now: SegmentLog.now()) { UUID().uuidString }
                                payloads.append(EventCodec.encode(.span(span)))
                            }
                            appends.append(payloads)
                        }
                        return (appender, appends, rawBytes)
                    }
                }
                var results: [(appender: Int, appends: [[ByteBuffer]], rawBytes: Int)] = []
                for try await result in group { results.append(result) }
                return results.sorted { $0.appender < $1.appender }
            }
            let workloads = generated.map(\.appends)
            let rawBytes = generated.reduce(0) { $0 + $1.rawBytes }
            let totalEvents = concurrency * appendsPerAppender * batch
            let eventBytesTotal = workloads.joined().joined().reduce(0) { $0 + $1.readableBytes }
            let progress = ProgressLine(total: totalEvents, unit: "events")
            let clock = ContinuousClock()
            // The projections, when asked for: a projector following the log, and a sampler of its lag.
            var projection: (store: any ProjectionStore, projector: Projector, running: Task<Void, any Error>, appliedBefore: UInt64)?
            if project {
                let store = try external ?? SQLiteProjectionStore(path: ProjectionPaths.database(in: directory), keepsGraph: !noGraph)
                let projector = Projector(log: log, store: store)
                try await projector.catchUp()
                projection = (store, projector, Task { try await projector.run() }, await projector.appliedSeq)
            }
            let sampledProjector = projection?.projector
            let lagSampler = Task { () -> (events: UInt64, seconds: Double) in
                var worst: (events: UInt64, seconds: Double) = (0, 0)
                guard let projector = sampledProjector else { return worst }
                while !Task.isCancelled {
                    let lag = await projector.lag()
                    worst = (max(worst.events, lag.events), max(worst.seconds, lag.seconds))
                    try? await Task.sleep(for: .milliseconds(20))
                }
                return worst
            }
            // The checkpoints, when the chain is on: written as the server writes them
            // (CheckpointSettings' defaults), competing with the appends; signed with the key
            // beside a kept data directory (the one a server started on it uses, so that `log
            // verify` accepts them), else with a key made for this run.
            let key =
                dataDirectory == nil
                ? SigningKey.generate()
                : try CheckpointWriter.loadKey(
                    at: SigningKey.defaultPath(forDataDirectory: directory),
                    newest: nil,
                    logger: Logger(label: "custody.bench")
                )
            let checkpoints =
                chain
                ? CheckpointWriter(log: log, settings: CheckpointSettings(key: key), newest: nil, logger: Logger(label: "custody.bench"))
                : nil
            let checkpointing = Task { await checkpoints?.run() }
            let started = clock.now
            let histograms = try await withThrowingTaskGroup(of: Histogram<UInt64>.self) { group in
                for (appender, workload) in workloads.enumerated() {
                    group.addTask {
                        var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
                        for (call, payloads) in workload.enumerated() {
                            if let rate {
                                // Appenders take turns: append number n (of all of them) is due at n × batch / rate.
                                let due = Double(call * concurrency + appender) * Double(batch) / rate
                                try await clock.sleep(until: started + .nanoseconds(Int64(due * 1e9)))
                            }
                            let t0 = clock.now
                            _ = try await log.append(payloads)
                            let elapsed = clock.now - t0
                            _ = histogram.record(UInt64(elapsed.components.seconds * 1_000_000 + elapsed.components.attoseconds / 1_000_000_000_000))
                            progress.advance(by: payloads.count)
                        }
                        return histogram
                    }
                }
                var merged = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
                for try await histogram in group { merged.add(histogram) }
                return merged
            }
            let elapsed = clock.now - started
            progress.finish()
            checkpointing.cancel()
            await checkpointing.value
            await checkpoints?.writeFinalCheckpoint()
            var projectionReport: ProjectionReport?
            if let projection {
                let head = await log.lastSeq
                try await projection.projector.waitUntilApplied(head, timeout: .seconds(600))
                let caughtUp = clock.now - started
                lagSampler.cancel()
                let worst = await lagSampler.value
                projection.running.cancel()
                _ = try? await projection.running.value
                if let sqlite = projection.store as? SQLiteProjectionStore { try sqlite.closeDatabase() }
                let applied = head - projection.appliedBefore
                let total = caughtUp.inSeconds
                projectionReport = ProjectionReport(
                    events: applied,
                    secondsUntilCaughtUp: total,
                    eventsPerSecond: Double(applied) / total,
                    worstLagEvents: worst.events,
                    worstLagSeconds: worst.seconds
                )
            } else {
                lagSampler.cancel()
            }
            let after = await log.status()
            await log.close()
            let seconds = elapsed.inSeconds
            // Segment files and their dictionaries.
            let dictionaryBytes = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
                .filter { $0.hasSuffix(".dict") }
                .reduce(0) { $0 + (((try? FileManager.default.attributesOfItem(atPath: directory + "/" + $1))?[.size] as? Int) ?? 0) }
            let diskBytes = after.segments.reduce(0) { $0 + $1.bytes } - before.segments.reduce(0) { $0 + $1.bytes } + Int64(dictionaryBytes)
            let statistics = after.statistics
            return IngestReport(
                events: totalEvents,
                appendCalls: concurrency * appendsPerAppender,
                concurrency: concurrency,
                batch: batch,
                eventBytes: eventBytes,
                fsync: logURLs == nil ? fsync : "JetStream stream \(stream), R\(replicas), acknowledged by a majority",
                seconds: seconds,
                eventsPerSecond: Double(totalEvents) / seconds,
                megabytesPerSecond: Double(rawBytes) / seconds / 1e6,
                latencyMicroseconds: .init(histograms),
                rawBytes: rawBytes,
                encodedBytes: eventBytesTotal,
                bytesOnDisk: diskBytes,
                compressionRatio: diskBytes > 0 ? Double(rawBytes) / Double(diskBytes) : 0,
                writes: statistics.writes,
                fsyncs: statistics.synchronizations,
                fsyncMeanMicroseconds: statistics.synchronizations > 0
                    ? Double(statistics.synchronizationNanoseconds) / Double(statistics.synchronizations) / 1000 : 0,
                eventsPerWrite: statistics.writes > 0 ? Double(statistics.recordsAppended) / Double(statistics.writes) : 0,
                projections: projectionReport,
                hashChain: chain,
                checkpoints: Int(after.lastSeq - before.lastSeq) - totalEvents,
                firstSeq: before.lastSeq + 1,
                lastSeq: after.lastSeq,
                dataDirectory: directory
            )
        }
    }
}

extension BenchCommand {
    /// Times a start on an existing data directory: open the log (recovery), open the
    /// projections and catch them up, refill the active-span cache.
    struct Startup: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Time a start on a data directory: log recovery, projections caught up, span cache refilled."
        )

        @OptionGroup var data: DataDirectoryOptions
        @Flag(help: "Print the report as JSON.") var json = false

        struct Report: Codable {
            var events: UInt64
            var logOpenSeconds: Double
            var projectionsSeconds: Double
            var projectionsBehind: UInt64
            var cacheRefillSeconds: Double
            var cachedSpans: Int
            var totalSeconds: Double
        }

        func run() async throws {
            let directory = data.path
            let report = try await awaitingCleanErrors { () async throws -> Report in
                let clock = ContinuousClock()
                func seconds(_ d: Duration) -> Double { d.inSeconds }
                let t0 = clock.now
                let log = try await SegmentLog.open(directory: directory)
                let t1 = clock.now
                let store = try SQLiteProjectionStore(path: ProjectionPaths.database(in: directory))
                let projector = Projector(log: log, store: store)
                let behind = await log.lastSeq - (try await store.appliedSeq())
                try await projector.catchUp()
                let t2 = clock.now
                let cache = ActiveSpanCache()
                try await cache.refill(from: log)
                let t3 = clock.now
                let report = Report(
                    events: await log.lastSeq,
                    logOpenSeconds: seconds(t1 - t0),
                    projectionsSeconds: seconds(t2 - t1),
                    projectionsBehind: behind,
                    cacheRefillSeconds: seconds(t3 - t2),
                    cachedSpans: await cache.count,
                    totalSeconds: seconds(t3 - t0)
                )
                try store.closeDatabase()
                await log.close()
                return report
            }
            if json {
                print(try encodeJSON(report))
            } else {
                print(
                    """
                    start-up of \(directory) (\(report.events) events): \(String(format: "%.3f", report.totalSeconds)) s
                      log open and recovery     \(String(format: "%.3f", report.logOpenSeconds)) s
                      projections caught up     \(String(format: "%.3f", report.projectionsSeconds)) s (\(report.projectionsBehind) events behind)
                      span cache refilled       \(String(format: "%.3f", report.cacheRefillSeconds)) s (\(report.cachedSpans) spans)
                    """
                )
            }
        }
    }
}
