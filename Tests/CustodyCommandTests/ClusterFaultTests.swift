import AsyncHTTPClient
import CustodyClient
import CustodyCore
import CustodyLog
import CustodyLogTesting
import CustodyServerTesting
import Foundation
import NIOCore
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// R9 on this machine: spans written through two `custody serve --log` nodes without pause while,
/// round after round, a JetStream node (the stream's leader or a follower) or a Custody node is
/// killed with SIGKILL at a random moment and brought back. Every acknowledged span is then in the
/// log exactly once, on both nodes; a write sent after each kill was acknowledged within 10 s of
/// it (after the stream leader's loss: within 10 s, or within 2 s of JetStream's election when
/// that itself took longer — docs/operations.md); GitHub issues asked of both nodes meanwhile
/// are each made once and every acknowledged one succeeds; and every node's projections, kept
/// through the kills, equal a rebuild from the stream row for row. Five rounds
/// in `make test`; `CUSTODY_CLUSTER_ROUNDS=N` runs N (20 for the full R9 run), and
/// `CUSTODY_KEEP_NODE_LOGS=1` keeps the nodes' output.
@Suite(.serialized, .timeLimit(.minutes(10)))
struct ClusterFaultTests {
    /// The writers' HTTP client: a write to a node that was just killed fails at once (the shared
    /// client keeps trying to connect until the request's deadline), so the writer moves on to
    /// the node's restart. Lives as long as the process.
    static let writersHTTP: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.timeout.connect = .seconds(1)
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }()

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

        /// GitHub's settings (a fake GitHub), the same on every node.
        let environment: [String: String]
        /// More `custody serve` arguments.
        let extra: [String]

        init(name: String, urls: String, key: String, environment: [String: String] = [:], extra: [String] = []) {
            self.name = name
            self.urls = urls
            self.key = key
            self.environment = environment
            self.extra = extra
            directory = ServerFixture.directory()
        }

        var base: String { lock.withLock { currentBase } }

        func start() async throws {
            // No checkpoints by the clock, so that the log stands still once the writers stop
            // (they still come every so many events).
            let (server, base) = try await CustodyCommand.serve(
                directory,
                ["--log", urls, "--node-name", name, "--signing-key", key, "--checkpoint-interval", "3600"] + extra,
                environment: environment
            )
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

        /// SIGTERM, and the node must be gone within 30 s: one that is not is recorded as an
        /// issue and killed, rather than left to hang the run.
        func stop() {
            if let server = lock.withLock({ self.server }) {
                server.process.terminate()
                let deadline = Date().addingTimeInterval(30)
                while server.process.isRunning && Date() < deadline { usleep(50_000) }
                if server.process.isRunning {
                    Issue.record("node \(name) did not stop within 30 s of SIGTERM: \(server.error.suffix(2000))")
                    Foundation.kill(server.process.processIdentifier, SIGKILL)
                }
                server.process.waitUntilExit()
                if ProcessInfo.processInfo.environment["CUSTODY_KEEP_NODE_LOGS"] == nil { server.removeFiles() }
            }
            removeDataDirectory(directory)
        }
    }

    /// Spans acknowledged, by span id; and the latest moment a write that was then acknowledged
    /// was sent (a write sent after a kill and acknowledged is what "writes resumed" means; one
    /// sent before and answered after is not).
    actor Ledger {
        var acknowledged: [String: String] = [:]
        var lastSuccess = ContinuousClock.now
        /// When ``lastSuccess`` was first seen past each moment a round waits from.
        var acknowledgedAt = ContinuousClock.now
        var stopped = false
        /// The last error a writer got, for the report of a round whose writes did not resume.
        var lastError = ""
        func failed(_ error: any Error, writer: Int) { lastError = "writer \(writer): \(error)" }
        func record(_ span: String, trace: String, sent: ContinuousClock.Instant) {
            acknowledged[span] = trace
            if sent > lastSuccess {
                lastSuccess = sent
                acknowledgedAt = .now
            }
        }
        func stop() { stopped = true }
        /// The GitHub operations acknowledged, by the number in their title.
        var operations: [Int: String] = [:]
        func requested(_ id: String, number: Int) { operations[number] = id }
    }

    @Test func acknowledgedSpansSurviveKillsExactlyOnce() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: CustodyExecutable.path), "build the custody executable first")
        let rounds = max(Int(ProcessInfo.processInfo.environment["CUSTODY_CLUSTER_ROUNDS"] ?? "") ?? 5, 1)
        let cluster = try await NATSCluster()
        defer { cluster.stop() }
        let (keyFolder, key) = try ServerFixture.sharedSigningKey()
        defer { removeDataDirectory(keyFolder) }
        let github = try await FakeGitHub.start(token: "ghp_clusterFaultToken0123456789abcdef")
        let githubEnvironment = [
            "GITHUB_TOKEN": github.token, "GITHUB_API_URL": github.baseURL, "GITHUB_OWNER": "acme", "GITHUB_REPO": "widgets",
        ]
        let nodes = [
            Node(name: "a", urls: cluster.urls, key: key, environment: githubEnvironment),
            Node(name: "b", urls: cluster.urls, key: key, environment: githubEnvironment),
        ]
        defer { for node in nodes { node.stop() } }
        for node in nodes { try await node.start() }
        let ledger = Ledger()
        var random = SplitMix64(seed: UInt64(rounds) &* 7919)
        let http = Self.writersHTTP

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
                            let client = CustodyClient(baseURL: node.base, timeout: .seconds(70), httpClient: http)
                            let sent = ContinuousClock.now
                            do {
                                _ = try await client.recordLog([
                                    LogEntry(traceId: trace, spanId: span, source: "ops-factory", operation: "fault.write")
                                ])
                                await ledger.record(span, trace: trace, sent: sent)
                            } catch {
                                await ledger.failed(error, writer: writer)
                                try? await Task.sleep(for: .milliseconds(50))
                            }
                        }
                    }
                }
            }
        }

        // And GitHub issues, asked of either node in turn, each under an idempotency key of its
        // own: a request that fails (its node killed) is asked again, same key, of the other.
        let requester = Task {
            var number = 0
            var turn = 0
            while await !ledger.stopped {
                number += 1
                var asked = false
                while !asked, await !ledger.stopped {
                    turn += 1
                    let client = CustodyClient(baseURL: nodes[turn % 2].base, timeout: .seconds(70), httpClient: http)
                    do {
                        let operation = try await client.createIssue(
                            title: "fault-issue-\(number)",
                            body: "asked during the fault rounds",
                            idempotencyKey: "fault-issue-\(number)"
                        )
                        await ledger.requested(operation.id, number: number)
                        asked = true
                    } catch {
                        try? await Task.sleep(for: .milliseconds(100))
                    }
                }
                try? await Task.sleep(for: .milliseconds(250))
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
                var election: (@Sendable () async -> Duration?)?
                if victim == leader { election = { await Self.election(in: cluster, replacing: victim, since: killedAt) } }
                try await waitForWrites(
                    after: killedAt,
                    ledger,
                    round: round,
                    what: "nats-server n\(victim) (leader n\(leader))",
                    election: election
                )
                try cluster.start(victim)
                try await cluster.waitUntilAnswering(victim)
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
                try await waitForWrites(
                    after: killedAt,
                    ledger,
                    round: round,
                    what: "nats-server n\(leader) and custody node a",
                    election: { await Self.election(in: cluster, replacing: leader, since: killedAt) }
                )
                try cluster.start(leader)
                try await cluster.waitUntilAnswering(leader)
                try await nodes[0].start()
            }
        }
        await ledger.stop()
        progress("cluster fault: rounds done, stopping the writers")
        await writers.value
        await requester.value
        progress("cluster fault: checking \(await ledger.acknowledged.count) spans")

        // Every GitHub operation acknowledged is carried out, by whichever node held the lease,
        // and no change is made twice: one issue per title, one POST per issue.
        let operations = await ledger.operations
        #expect(operations.count >= 5, "only \(operations.count) GitHub operations were acknowledged")
        let outcomesBy = ContinuousClock.now + .seconds(60)
        var pending = Set(operations.values)
        while !pending.isEmpty && ContinuousClock.now < outcomesBy {
            let client = CustodyClient(baseURL: nodes[0].base)
            for id in pending where (try? await client.getOperation(id))?.status == "succeeded" { pending.remove(id) }
            if !pending.isEmpty { try await Task.sleep(for: .milliseconds(500)) }
        }
        #expect(pending.isEmpty, "\(pending.count) of \(operations.count) GitHub operations did not succeed within 60 s")
        let titles = github.issueTitles
        #expect(
            titles.count == Set(titles).count,
            "an issue was made twice: \(Dictionary(grouping: titles, by: { $0 }).filter { $0.value.count > 1 }.keys.sorted())"
        )
        for number in operations.keys { #expect(titles.contains("fault-issue-\(number)"), "issue \(number) was never made") }
        let posts = github.received.filter { $0.method == "POST" && $0.path.hasSuffix("/issues") }.count
        #expect(posts == titles.count, "\(posts) POSTs made \(titles.count) issues")
        // Both nodes agree on every operation.
        for id in operations.values {
            let onB = try await CustodyClient(baseURL: nodes[1].base).getOperation(id)
            #expect(onB.status == "succeeded", "\(id) on b: \(onB.status)")
        }
        await github.stop()

        // Both nodes come to hold the same log and to have applied all of it (response spans
        // may still be arriving: wait until both stand still at one head).
        let heads = try await Self.appliedHeads(of: nodes)
        #expect(heads[0] > 0 && heads[0] == heads[1], "the nodes do not come to one head: \(heads)")

        // Every acknowledged span, exactly once, on both nodes (each node read the whole stream
        // into its own projections).
        let acknowledged = await ledger.acknowledged
        #expect(acknowledged.count > 100, "only \(acknowledged.count) spans were acknowledged")
        for node in nodes {
            let (missing, doubled) = try await Self.missingAndDoubled(acknowledged, operation: "fault.write", on: node)
            #expect(missing == 0 && doubled == 0, "node \(node.name): \(missing) acknowledged spans missing, \(doubled) twice")
        }

        // Every node's projections, kept through the kills, equal a rebuild from the stream
        // (`custody rebuild --log`), row for row.
        for node in nodes { try await node.kill() }
        let rebuilt = ServerFixture.directory()
        defer { removeDataDirectory(rebuilt) }
        let rebuild = try await CustodyCommand.run(["rebuild", "--data-dir", rebuilt, "--log", cluster.urls, "--json"])
        #expect(rebuild.status == 0, "\(rebuild.output) \(rebuild.error)")
        let reference = try SQLiteProjectionStore(path: ProjectionPaths.database(in: rebuilt))
        let expected = try await reference.dump()
        #expect(try await reference.appliedSeq() == heads[0])
        try reference.closeDatabase()
        for node in nodes {
            let store = try SQLiteProjectionStore(path: ProjectionPaths.database(in: node.directory))
            let dump = try await store.dump()
            try store.closeDatabase()
            for table in SQLiteProjectionStore.tables {
                let mine = dump[table] ?? []
                let theirs = expected[table] ?? []
                #expect(
                    mine == theirs,
                    "node \(node.name): \(table) has \(mine.count) rows, the rebuild \(theirs.count); first difference: \(zip(mine, theirs).first { $0 != $1 }.map { "\($0)" } ?? "-")"
                )
            }
        }
    }

    /// The nodes' heads once every node has applied its whole log and they agree (within 60 s;
    /// a node not there yet counts 0).
    static func appliedHeads(of nodes: [Node]) async throws -> [UInt64] {
        var heads: [UInt64] = []
        var previous: [UInt64] = []
        let agreeBy = ContinuousClock.now + .seconds(60)
        repeat {
            previous = heads
            heads = []
            for node in nodes {
                let stats = try? await CustodyClient(baseURL: node.base, timeout: .seconds(5)).adminStats()
                let applied = stats?["projections"]?["applied_seq"]?.numberValue.map { UInt64($0) } ?? 0
                let head = stats?["log"]?["last_seq"]?.numberValue.map { UInt64($0) } ?? 1
                heads.append(applied == head ? head : 0)
            }
            // Standing still: the same head on both, twice 200 ms apart (closing spans are
            // appended up to the ResponseRecorder's 20 ms linger after their request answered).
            if heads[0] > 0 && Set(heads).count == 1 && heads == previous { break }
            try await Task.sleep(for: .milliseconds(200))
        } while ContinuousClock.now < agreeBy
        return heads
    }

    /// How many of the acknowledged spans (span id → trace id) of `operation` a node's traces
    /// lack, and how many they hold twice.
    static func missingAndDoubled(_ acknowledged: [String: String], operation: String, on node: Node) async throws -> (Int, Int) {
        let traces = Dictionary(grouping: acknowledged, by: \.value).mapValues { Set($0.map(\.key)) }
        let client = CustodyClient(baseURL: node.base)
        var missing = 0
        var doubled = 0
        for (trace, spans) in traces {
            let document = try await client.getTrace(trace)
            let ids = document.spans.filter { $0.operation == operation }.compactMap(\.spanId)
            missing += spans.subtracting(ids).count
            doubled += ids.count - Set(ids).count
        }
        return (missing, doubled)
    }

    func progress(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }

    /// Waits until a write sent after `moment` is acknowledged, and records an issue when that
    /// took over 10 s (after a leader's loss: over 10 s and over 2 s after JetStream elected the
    /// next leader, which `election` measures).
    func waitForWrites(
        after moment: ContinuousClock.Instant,
        _ ledger: Ledger,
        round: Int,
        what: String,
        election: (@Sendable () async -> Duration?)? = nil
    ) async throws {
        async let elected = election?()
        let deadline = moment + .seconds(30)
        while await ledger.lastSuccess <= moment && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        // From the kill to the acknowledgement of the first write sent after it.
        let resumed = await ledger.lastSuccess > moment ? await ledger.acknowledgedAt - moment : ContinuousClock.now - moment
        let electedAfter = await elected
        let electionText = electedAfter.map { ", the new stream leader elected after \(Self.seconds($0))" } ?? ""
        progress("round \(round): writes resumed \(Self.seconds(resumed)) after killing \(what)\(electionText)")
        // Within 10 s of the kill — unless JetStream itself took longer to elect the stream's
        // next leader (nats-server 2.9 waits 4–9 s before it campaigns, and again after a split
        // vote: up to ~20 s measured here), and then within 2 s of that election. Custody can
        // write only once the stream has a leader; docs/operations.md says so.
        let engineBound = electedAfter.map { $0 > .seconds(9) && resumed <= $0 + .seconds(2) } ?? false
        if engineBound {
            progress("round \(round): JetStream's election took over 9 s; writes resumed within 2 s of it")
        }
        if resumed > .seconds(10) && !engineBound {
            Issue.record(
                "round \(round): no write was acknowledged within 10 s of killing \(what) (\(Self.seconds(resumed))\(electionText)); last error: \(await ledger.lastError)"
            )
            if let pause = ProcessInfo.processInfo.environment["CUSTODY_FAULT_PAUSE"].flatMap(Int.init) {
                progress("pausing \(pause) s to look at the nodes (CUSTODY_FAULT_PAUSE)")
                try await Task.sleep(for: .seconds(pause))
            }
        }
    }

    /// How long after `moment` the stream had a leader other than `killed` (nil: not in 30 s).
    static func election(in cluster: NATSCluster, replacing killed: Int, since moment: ContinuousClock.Instant) async -> Duration? {
        while ContinuousClock.now - moment < .seconds(30) {
            if let leader = await cluster.streamLeader("CUSTODY"), leader != killed { return ContinuousClock.now - moment }
            try? await Task.sleep(for: .milliseconds(100))
        }
        return nil
    }

    static func seconds(_ duration: Duration) -> String { String(format: "%.1f s", duration.inSeconds) }
}

extension Sequence where Element: Sendable {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var results: [T] = []
        for element in self { results.append(try await transform(element)) }
        return results
    }
}
