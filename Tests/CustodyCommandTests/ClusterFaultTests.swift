import CustodyClient
import CustodyCore
import CustodyLogTesting
import CustodyServerTesting
import Foundation
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// R9 on this machine: spans written through two `custody serve --log` nodes without pause while,
/// round after round, a JetStream node (the stream's leader or a follower) or a Custody node is
/// killed with SIGKILL at a random moment and brought back. Every acknowledged span is then in the
/// log exactly once, on both nodes, and writes resumed within 10 s of each kill.
/// `CUSTODY_CLUSTER_ROUNDS=N` runs it with N rounds (20 for the full R9 run).
///
/// Not yet part of `make test`: it runs only when `CUSTODY_CLUSTER_ROUNDS` is set, because it
/// finds a fault that is not fixed yet. After a round that kills the stream's leader, writes
/// through both nodes with four concurrent writers slow to a few a second (and a later round's
/// "writes resume within 10 s" fails), while every acknowledged span is still there exactly once.
/// A single writer per node does not show it. Issue 20 stays open on it.
@Suite(
    .serialized,
    .timeLimit(.minutes(10)),
    .enabled(if: ProcessInfo.processInfo.environment["CUSTODY_CLUSTER_ROUNDS"] != nil, "set CUSTODY_CLUSTER_ROUNDS to run the cluster fault rounds")
)
struct ClusterFaultTests {
    /// A Custody node that can be killed and started again on its data directory.
    final class Node: @unchecked Sendable {
        // @unchecked Sendable: the fields are changed only by the test's own task, between
        // rounds, while no writer reads them (writers read `base` through `lock`).
        let name: String
        let directory: String
        let key: String
        let urls: String
        private let lock = NSLock()
        private var server: CustodyCommand?
        private var currentBase = ""

        init(name: String, urls: String, key: String) {
            self.name = name
            self.urls = urls
            self.key = key
            directory = ServerFixture.directory()
        }

        var base: String { lock.withLock { currentBase } }

        func start() async throws {
            let (server, base) = try await CustodyCommand.serve(directory, ["--log", urls, "--node-name", name, "--signing-key", key])
            lock.withLock {
                self.server = server
                currentBase = base
            }
        }

        func kill() async throws {
            guard let server = lock.withLock({ self.server }) else { return }
            Foundation.kill(server.process.processIdentifier, SIGKILL)
            try await ChildProcess.exit(server.process)
            if ProcessInfo.processInfo.environment["CUSTODY_KEEP_NODE_LOGS"] == nil { server.removeFiles() }
            lock.withLock { self.server = nil }
        }

        func stop() {
            if let server = lock.withLock({ self.server }) {
                server.process.terminate()
                server.process.waitUntilExit()
                if ProcessInfo.processInfo.environment["CUSTODY_KEEP_NODE_LOGS"] == nil { server.removeFiles() }
            }
            removeDataDirectory(directory)
        }
    }

    /// Spans acknowledged, by span id, and when the last write went through.
    actor Ledger {
        var acknowledged: [String: String] = [:]
        var lastSuccess = ContinuousClock.now
        var stopped = false
        /// The last error a writer got, for the report of a round whose writes did not resume.
        var lastError = ""
        func failed(_ error: any Error, writer: Int) { lastError = "writer \(writer): \(error)" }
        func record(_ span: String, trace: String) {
            acknowledged[span] = trace
            lastSuccess = .now
        }
        func stop() { stopped = true }
    }

    @Test func acknowledgedSpansSurviveKillsExactlyOnce() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: CustodyExecutable.path), "build the custody executable first")
        let rounds = max(Int(ProcessInfo.processInfo.environment["CUSTODY_CLUSTER_ROUNDS"] ?? "") ?? 5, 1)
        let cluster = try await NATSCluster()
        defer { cluster.stop() }
        let keyFolder = ServerFixture.directory()
        try FileManager.default.createDirectory(atPath: keyFolder, withIntermediateDirectories: true)
        defer { removeDataDirectory(keyFolder) }
        let nodes = [
            Node(name: "a", urls: cluster.urls, key: keyFolder + "/cluster.signing-key"),
            Node(name: "b", urls: cluster.urls, key: keyFolder + "/cluster.signing-key"),
        ]
        defer { for node in nodes { node.stop() } }
        for node in nodes { try await node.start() }
        let ledger = Ledger()
        var random = SplitMix64(seed: UInt64(rounds) &* 7919)

        // Two writers per node, each a sequence of spans with ids of its own.
        let writers = Task {
            await withTaskGroup(of: Void.self) { group in
                for writer in 0..<4 {
                    let node = nodes[writer % 2]
                    group.addTask {
                        var count = 0
                        while await !ledger.stopped {
                            count += 1
                            let span = "w\(writer)-\(count)"
                            let trace = "fault-w\(writer)-\(count / 50)"
                            let client = CustodyClient(baseURL: node.base, timeout: .seconds(70))
                            do {
                                _ = try await client.recordLog([
                                    LogEntry(traceId: trace, spanId: span, source: "ops-factory", operation: "fault.write")
                                ])
                                await ledger.record(span, trace: trace)
                            } catch {
                                await ledger.failed(error, writer: writer)
                                try? await Task.sleep(for: .milliseconds(50))
                            }
                        }
                    }
                }
            }
        }

        for round in 0..<rounds {
            try await Task.sleep(for: .milliseconds(300 + Int(random.next() % 700)))
            let choice = Int(random.next() % 4)
            let killedAt = ContinuousClock.now
            progress("cluster fault round \(round): kill \(choice), \(await ledger.acknowledged.count) spans acknowledged so far")
            switch choice {
            case 0, 1:
                // The stream's leader (twice as often), or a follower.
                let leader = await cluster.streamLeader("CUSTODY") ?? 0
                let victim = choice == 0 ? leader : (leader + 1 + Int(random.next() % 2)) % 3
                try await cluster.kill(victim)
                progress("killed n\(victim)")
                try await waitForWrites(after: killedAt, ledger, round: round, what: "nats-server n\(victim) (leader n\(leader))")
                progress("writes resumed")
                try cluster.start(victim)
                try await cluster.waitUntilAnswering(victim)
                progress("n\(victim) back")
            case 2:
                // A Custody node: its writers fail until it is back; the other's go on.
                let node = nodes[Int(random.next() % 2)]
                try await node.kill()
                try await waitForWrites(after: killedAt, ledger, round: round, what: "custody node \(node.name)")
                try await node.start()
            default:
                // The leader and a Custody node at once.
                let leader = await cluster.streamLeader("CUSTODY") ?? 0
                try await cluster.kill(leader)
                try await nodes[0].kill()
                try await waitForWrites(after: killedAt, ledger, round: round, what: "nats-server n\(leader) and custody node a")
                try cluster.start(leader)
                try await cluster.waitUntilAnswering(leader)
                try await nodes[0].start()
            }
        }
        await ledger.stop()
        progress("cluster fault: rounds done, stopping the writers")
        await writers.value
        progress("cluster fault: checking \(await ledger.acknowledged.count) spans")

        // Every acknowledged span, exactly once, on both nodes (each node read the whole stream
        // into its own projections).
        let acknowledged = await ledger.acknowledged
        #expect(acknowledged.count > 100, "only \(acknowledged.count) spans were acknowledged")
        let traces = Dictionary(grouping: acknowledged, by: \.value).mapValues { Set($0.map(\.key)) }
        for node in nodes {
            let client = CustodyClient(baseURL: node.base)
            var missing = 0
            var doubled = 0
            for (trace, spans) in traces {
                let document = try await client.getTrace(trace)
                let ids = document.spans.filter { $0.operation == "fault.write" }.compactMap(\.spanId)
                missing += spans.subtracting(ids).count
                doubled += ids.count - Set(ids).count
            }
            #expect(missing == 0 && doubled == 0, "node \(node.name): \(missing) acknowledged spans missing, \(doubled) twice")
        }
        // Both nodes come to hold the same log (response spans and checkpoints may still be
        // arriving: wait until the heads agree).
        var heads: [JSON?] = []
        let agreeBy = ContinuousClock.now + .seconds(20)
        repeat {
            heads = try await nodes.asyncMap { node in
                try await CustodyClient(baseURL: node.base).clusterStatus()["stream"]?["last_seq"]
            }
            if heads[0] == heads[1] { break }
            try await Task.sleep(for: .milliseconds(200))
        } while ContinuousClock.now < agreeBy
        #expect(heads[0] != nil && heads[0] == heads[1], "\(heads)")
    }

    func progress(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }

    /// Waits until a write is acknowledged after `moment`, at most 10 s.
    func waitForWrites(after moment: ContinuousClock.Instant, _ ledger: Ledger, round: Int, what: String) async throws {
        let deadline = moment + .seconds(10)
        while await ledger.lastSuccess <= moment {
            if ContinuousClock.now > deadline {
                Issue.record("round \(round): no write was acknowledged within 10 s of killing \(what); last error: \(await ledger.lastError)")
                return
            }
            try await Task.sleep(for: .milliseconds(50))
        }
    }
}

extension Sequence where Element: Sendable {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var results: [T] = []
        for element in self { results.append(try await transform(element)) }
        return results
    }
}
