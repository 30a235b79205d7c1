import CustodyClient
import CustodyCore
import CustodyLogTesting
import CustodyServer
import CustodyServerTesting
import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import NIOPosix
import Testing

/// Live replay over real sockets with real `custody worker` processes.
@Suite(.timeLimit(.minutes(2))) struct LiveReplayTests {
    /// Starts `custody worker --name NAME` on a port of its own choosing (and, with `rpc`, a gRPC
    /// port too) against `orchestrator`; returns once it serves, with the address it printed.
    static func startWorker(name: String, orchestrator: String, rpc: Bool = false) async throws -> (Process, url: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CustodyExecutable.path)
        process.arguments = ["worker", "--name", name, "--port", "0", "--orchestrator", orchestrator] + (rpc ? ["--rpc-port", "0"] : [])
        let output = ServerFixture.directory() + "-worker.txt"
        defer { try? FileManager.default.removeItem(atPath: output) }
        process.standardOutput = try ChildProcess.outputFile(output)
        process.standardError = FileHandle.nullDevice
        try process.run()
        let needle = rpc ? "over gRPC on " : "serving SimOps on "
        let text = try await ChildProcess.text(of: output, containing: needle)
        guard let line = text.split(separator: "\n").first(where: { $0.contains(needle) }), let address = line.split(separator: " ").last else {
            process.terminate()
            try? await ChildProcess.exit(process)
            throw CustodyCommand.CommandFailed(message: "the worker did not start: \(text)")
        }
        let url = rpc ? String(address) : String(address.dropLast("/simulate".count))
        return (process, url)
    }

    /// Runs `body` with `custody worker --name NAME` serving, added to `workers` once it listens;
    /// stops it after (SIGTERM), waiting for its exit without blocking a thread of the pool.
    static func withWorker<Value: Sendable>(
        name: String,
        orchestrator: String,
        workers: HandedOverWorkers,
        rpc: Bool = false,
        _ body: () async throws -> Value
    ) async throws -> Value {
        let (worker, url) = try await startWorker(name: name, orchestrator: orchestrator, rpc: rpc)
        workers.add(name, url)
        do {
            let value = try await body()
            worker.terminate()
            try await ChildProcess.exit(worker)
            return value
        } catch {
            worker.terminate()
            try? await ChildProcess.exit(worker)
            throw error
        }
    }

    /// A worker that takes connections and never answers.
    static func silentWorker() async throws -> (any Channel, Int) {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in channel.eventLoop.makeSucceededVoidFuture() }
            .bind(host: "127.0.0.1", port: 0).get()
        return (channel, channel.localAddress?.port ?? 0)
    }

    /// agent-factory is up: its spans are dispatched and its `sim_replay` spans land in the new
    /// trace, after their replay_span_start. data-factory is down and ui-factory never answers:
    /// each of their spans gets a replay_error, and the replay completes anyway. Orchestrator
    /// spans are never dispatched. A dry run of the same trace calls no worker.
    @Test func liveReplayDispatchesToWorkersAndRecordsFailures() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: CustodyExecutable.path), "build the custody executable first")
        let down = try RefusingPort()
        defer { down.close() }
        let (silent, silentPort) = try await Self.silentWorker()
        defer { silent.close(promise: nil) }
        // A short worker timeout: the silent worker's spans must time out (the real one answers
        // well within it).
        let workers = HandedOverWorkers(timeout: .seconds(5))
        workers.add("data-factory", "http://127.0.0.1:\(down.port)")
        workers.add("ui-factory", "http://127.0.0.1:\(silentPort)")
        try await ServerFixture.run(.live, replayWorkers: workers) { _, client in
            let serverPort = try #require(client.port)
            try await Self.withWorker(name: "agent-factory", orchestrator: "http://127.0.0.1:\(serverPort)", workers: workers) {
                let plan =
                    ReplayTests.plan + [PlannedSpan(source: "ui-factory", operation: "ui.render", offsetMs: 60, durationMs: 10)]
                try await recordTrace("live-orig", plan, client: client)
                let answer = try await client.call(.post, "/api/traces/replay/live-orig", json: #"{"mode":"live"}"#)
                #expect(answer.status == .ok)
                #expect(answer.data["status"] as? String == "completed")
                #expect(answer.data["spans"] as? Int == plan.count)
                #expect(answer.data["errors"] as? Int == 2)
                let newTrace = try #require(answer.data["new_trace"] as? String)
                let sdk = CustodyClient(baseURL: "http://127.0.0.1:\(serverPort)")
                let trace = try await sdk.getTrace(newTrace)
                let agentSpans = plan.filter { $0.source == "agent-factory" }
                let simulated = trace.spans.filter { $0.stage == "sim_replay" }
                #expect(simulated.count == agentSpans.count)
                #expect(simulated.allSatisfy { $0.source == "agent-factory" && $0.details?["simulated_from"] == "live-orig" })
                #expect(Set(simulated.map(\.operation)) == Set(agentSpans.map(\.operation)))
                // Each sim_replay comes after the replay_span_start of its span, in log order.
                for span in simulated {
                    let start = trace.spans.first {
                        $0.stage == "replay_span_start" && $0.operation == span.operation && $0.source == "agent-factory"
                    }
                    #expect((start?.seq ?? .max) < span.seq)
                }
                let errors = trace.spans.filter { $0.stage == "replay_error" }
                #expect(Set(errors.map(\.source)) == ["data-factory", "ui-factory"])
                let down = try #require(errors.first { $0.source == "data-factory" }?.details?["error"]?.stringValue)
                #expect(down.contains("data-factory") && down.contains("could not be reached"), "\(down)")
                let hung = try #require(errors.first { $0.source == "ui-factory" }?.details?["error"]?.stringValue)
                #expect(hung.contains("no answer"), "\(hung)")
                #expect(trace.summary.replayOf == "live-orig")
                #expect(trace.summary.errorCount == 2)

                let dry = try await sdk.replayTrace("live-orig", mode: .dryRun)
                let dryTrace = try await sdk.getTrace(dry.newTrace)
                #expect(!dryTrace.spans.contains { $0.stage == "sim_replay" || $0.stage == "replay_error" })
                #expect(dry.errors == 0)

                // The compare view pairs the original's spans with the live replay's ends.
                let comparison = try await sdk.compareTraces("live-orig", newTrace)
                if case .array(let pairs)? = comparison["pairs"] { #expect(pairs.count == plan.count) } else { Issue.record("no pairs") }
            }
        }
    }

    /// docs/api.md "Replay": a live replay of a trace with spans of a source that has no worker
    /// (data-factory here) completes, but says so: those spans' `replay_span_end` carry
    /// `dispatched: false`, and the result counts them in `undispatched` by source. Spans of a
    /// served source and Custody's own are not counted; a dry run reports nothing undispatched.
    @Test func aLiveReplayThatSkipsSpansSaysSo() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: CustodyExecutable.path), "build the custody executable first")
        let rpcPort = Shared(0)
        let workers = HandedOverWorkers()
        try await ServerFixture.run(.live, replayWorkers: workers, rpcPort: rpcPort) { _, client in
            let serverPort = try #require(client.port)
            try await Self.withWorker(name: "agent-factory", orchestrator: "http://127.0.0.1:\(serverPort)", workers: workers) {
                let plan = ReplayTests.plan + [PlannedSpan(source: "data-factory", operation: "data.save", offsetMs: 70, durationMs: 5)]
                try await recordTrace("partial-orig", plan, client: client)
                let answer = try await client.call(.post, "/api/traces/replay/partial-orig", json: #"{"mode":"live"}"#)
                #expect(answer.status == .ok && answer.data["status"] as? String == "completed")
                #expect(answer.data["errors"] as? Int == 0)
                let undispatched = try #require(answer.data["undispatched"] as? [String: Any])
                #expect(undispatched.count == 1 && undispatched["data-factory"] as? Int == 2, "\(undispatched)")

                let sdk = CustodyClient(baseURL: "http://127.0.0.1:\(serverPort)")
                let trace = try await sdk.getTrace(try #require(answer.data["new_trace"] as? String))
                let ends = trace.spans.filter { $0.stage == "replay_span_end" }
                #expect(ends.count == plan.count)
                for end in ends {
                    let skipped = end.source == "data-factory"
                    #expect((end.details?["dispatched"] == .bool(false)) == skipped, "\(end.source) \(end.operation)")
                }
                #expect(trace.spans.filter { $0.stage == "sim_replay" }.count == plan.filter { $0.source == "agent-factory" }.count)

                let dry = try await sdk.replayTrace("partial-orig", mode: .dryRun)
                #expect(dry.undispatched == [:])
                let dryEnds = try await sdk.getTrace(dry.newTrace).spans.filter { $0.stage == "replay_span_end" }
                #expect(!dryEnds.contains { $0.details?["dispatched"] != nil })
                // The SDK's typed result carries it too, over HTTP and over gRPC.
                let again = try await sdk.replayTrace("partial-orig", mode: .live)
                #expect(again.undispatched == ["data-factory": 2])
                for _ in 0..<400 where rpcPort.withLock({ $0 }) == 0 { try await Task.sleep(for: .milliseconds(10)) }
                let connection = try CustodyRPCConnection(host: "127.0.0.1", port: rpcPort.withLock { $0 })
                defer { connection.close() }
                let overRPC = try await CustodyClient(baseURL: "http://127.0.0.1:1", rpc: connection).replayTrace("partial-orig", mode: .live)
                #expect(overRPC.undispatched == ["data-factory": 2])
            }
        }
    }

    /// A worker mapped as `grpc://host:port` gets live replay's calls over gRPC (SimOps on the
    /// worker's `--rpc-port`), and its `sim_replay` spans land in the new trace.
    @Test func liveReplayReachesAWorkerOverGRPC() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: CustodyExecutable.path), "build the custody executable first")
        let workers = HandedOverWorkers()
        try await ServerFixture.run(.live, replayWorkers: workers) { _, client in
            let serverPort = try #require(client.port)
            let (process, url) = try await Self.startWorker(name: "agent-factory", orchestrator: "http://127.0.0.1:\(serverPort)", rpc: true)
            defer { process.terminate() }
            try #require(url.hasPrefix("grpc://127.0.0.1:"), "\(url)")
            workers.add("agent-factory", url)
            try await recordTrace("grpc-orig", ReplayTests.plan, client: client)
            let answer = try await client.call(.post, "/api/traces/replay/grpc-orig", json: #"{"mode":"live"}"#)
            #expect(answer.data["status"] as? String == "completed")
            #expect(answer.data["errors"] as? Int == 0)
            let newTrace = try #require(answer.data["new_trace"] as? String)
            let trace = try await CustodyClient(baseURL: "http://127.0.0.1:\(serverPort)").getTrace(newTrace)
            let simulated = trace.spans.filter { $0.stage == "sim_replay" }
            #expect(
                simulated.count == ReplayTests.plan.filter { $0.source == "agent-factory" }.count,
                "\(trace.spans.filter { $0.stage == "replay_error" }.map { $0.details?["error"] })"
            )
            #expect(simulated.allSatisfy { $0.source == "agent-factory" && $0.details?["simulated_from"] == "grpc-orig" })
        }
    }

    /// A replay at the original pace may take longer than the deadline that cuts off slow
    /// clients: its request is complete, so its answer is allowed to take its time.
    @Test func aReplayOutlastsTheSlowClientDeadline() async throws {
        // The deadline leaves a loaded machine time to read the request and reach the route; the
        // replay's pacing (4.5 s) is well past it.
        var limits = ServerLimits()
        limits.requestDeadline = .seconds(2)
        try await ServerFixture.run(.live, limits: limits) { runtime, test in
            // Recorded through the core: only the replay goes over a connection with the short
            // deadline (an ingest request on a busy machine could itself take a second).
            let body = ByteBuffer(
                string: #"[{"trace_id":"long","source":"a","operation":"first","duration_ms":10,"timestamp":"2026-11-25T10:00:00Z"},"#
                    + #"{"trace_id":"long","source":"a","operation":"last","timestamp":"2026-11-25T10:00:04.5Z"}]"#
            )
            _ = try await runtime.logs.recordLog(try SpanJSONParser.parseLogBody(body, maximumDepth: 64), request: RequestTrace(traceId: "setup"))
            let custody = CustodyClient(baseURL: "http://127.0.0.1:\(try #require(test.port))")
            let replay = try await custody.replayTrace("long", speed: 1)
            #expect(replay.status == "completed" && replay.durationMs >= 4500)
        }
    }

    /// A port nothing listens on (bound, then closed). Only for `custody demo`, whose factories'
    /// ports must be known before it starts (the demo has no way to hand ports over); every other
    /// test binds port 0 and is told the port.
    static func freePort() async throws -> Int {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get()
        let port = channel.localAddress?.port ?? 0
        try await channel.close()
        return port
    }

    /// Five consecutive free ports (for `custody demo`, as ``freePort()``).
    static func freePorts() async throws -> Int {
        for _ in 0..<20 {
            let base = Int.random(in: 20_000...60_000)
            var channels: [any Channel] = []
            for port in base..<(base + 5) {
                guard let channel = try? await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: port).get()
                else { break }
                channels.append(channel)
            }
            for channel in channels { try await channel.close() }
            if channels.count == 5 { return base }
        }
        throw CancellationError()
    }

    /// `custody demo` as a real process: five factories generate traffic through the SDK, every
    /// one of them shows up in the traces, and a live replay of a factory's trace reaches that
    /// factory (sim_replay spans, no errors). SIGTERM stops it cleanly.
    @Test func demoGeneratesTrafficThatLiveReplayReaches() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: CustodyExecutable.path), "build the custody executable first")
        let directory = ServerFixture.directory()
        defer { removeDataDirectory(directory) }
        let port = try await Self.freePort()
        let workerPort = try await Self.freePorts()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CustodyExecutable.path)
        process.arguments = [
            "demo", "--data-dir", directory, "--port", String(port), "--rpc-port", "0", "--worker-port", String(workerPort), "--rate", "2",
        ]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer {
            // Only on failure (the end of the test waits for the exit): never block the pool.
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
        // Patient: a debug build under the whole suite's load is slow, and speed is not the point.
        let custody = CustodyClient(baseURL: "http://127.0.0.1:\(port)", timeout: .seconds(60))
        var sources: Set<String> = []
        let factories: Set<String> = ["agent-factory", "data-factory", "services-factory", "ui-factory", "ops-factory"]
        for _ in 0..<100 where !factories.isSubset(of: sources) {
            try await Task.sleep(for: .milliseconds(200))
            guard let answer = try? await custody.searchTraces(limit: 200) else { continue }
            sources = Set(answer.traces.flatMap(\.sources))
        }
        #expect(factories.isSubset(of: sources), "\(sources)")
        let page = try await custody.searchTraces(source: "ui-factory", limit: 50)
        // A whole flow: the factory's spans and the orchestrator's for the calls it made.
        let summary = try #require(page.traces.first { $0.rootOperation == "ui.handleOrder" && $0.sources.contains("orchestrator") })
        // Let the flow finish (its last spans may still be in the factory's exporter).
        try await Task.sleep(for: .seconds(1))
        let replay = try await custody.replayTrace(summary.traceId, mode: .live)
        #expect(replay.status == "completed" && replay.errors == 0)
        let trace = try await custody.getTrace(replay.newTrace)
        // Every ui-factory span the replay re-read (the flow may have grown since) was acted out
        // by the factory, and nothing was left undispatched.
        let factorySpans = trace.spans.filter { $0.stage == "replay_span_end" && $0.source == "ui-factory" }.count
        #expect(factorySpans > 0)
        #expect(trace.spans.filter { $0.stage == "sim_replay" && $0.source == "ui-factory" }.count == factorySpans)
        #expect(replay.undispatched == [:])
        process.terminate()
        try await ChildProcess.exit(process)
        #expect(process.terminationStatus == 0)
    }
}
