import AsyncHTTPClient
import CustodyClient
import CustodyCore
import CustodyLog
import CustodyLogTesting
import CustodyServerTesting
import Foundation
import Logging
import Testing

/// Two `custody serve --log nats://… --projections postgresql://…` nodes sharing one PostgreSQL
/// schema (docs/projections.md, "On PostgreSQL"), spans written through both without pause while
/// the node that applies events is killed with SIGKILL (twice), and between those PostgreSQL
/// itself is killed and restarted: the other node takes over the applying within 10 s, from the
/// checkpoint, and the projections resume after PostgreSQL's restart; every
/// acknowledged span is then in the projections exactly once, on both nodes' answers; and the
/// shared projections answer every read as a rebuild of the stream into SQLite does.
@Suite(.serialized, .timeLimit(.minutes(10)))
struct PostgreSQLClusterTests {
    typealias Node = ClusterFaultTests.Node
    typealias Ledger = ClusterFaultTests.Ledger

    /// A node's projections as `/api/admin/stats` shows them: applied seq, log head, whether it
    /// applies events. Nil when the node does not answer.
    static func projections(of node: Node) async -> (applied: UInt64, head: UInt64, applies: Bool)? {
        guard !node.base.isEmpty, let stats = try? await CustodyClient(baseURL: node.base, timeout: .seconds(5)).adminStats() else {
            return nil
        }
        let applied = UInt64(stats["projections"]?["applied_seq"]?.numberValue ?? 0)
        let head = UInt64(stats["log"]?["last_seq"]?.numberValue ?? 0)
        let applies = stats["projections"]?["applies_events"] == .bool(true)
        return (applied, head, applies)
    }

    /// The node applying events, once exactly one says so (at most `seconds`).
    static func writer(of nodes: [Node], within seconds: Int) async throws -> Node? {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while ContinuousClock.now < deadline {
            var writers: [Node] = []
            for node in nodes where await projections(of: node)?.applies == true { writers.append(node) }
            if writers.count == 1 { return writers[0] }
            try await Task.sleep(for: .milliseconds(50))
        }
        return nil
    }

    @Test func theApplyingNodeAndPostgreSQLKilledDuringIngestLoseAndRepeatNothing() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: CustodyExecutable.path), "build the custody executable first")
        let cluster = try await NATSCluster()
        defer { cluster.stop() }
        let postgres = try await PostgreSQLServer()
        defer { postgres.stop() }
        let (keyFolder, key) = try ServerFixture.sharedSigningKey()
        defer { removeDataDirectory(keyFolder) }
        let url = "postgresql://\(PostgreSQLServer.user)@127.0.0.1:\(postgres.port)/postgres?schema=shared"
        let nodes = ["a", "b"].map { Node(name: $0, urls: cluster.urls, key: key, extra: ["--projections", url]) }
        defer { for node in nodes { node.stop() } }
        for node in nodes { try await node.start() }
        let ledger = Ledger()
        let http = ClusterFaultTests.writersHTTP

        let writers = Task {
            await withTaskGroup(of: Void.self) { group in
                for writer in 0..<4 {
                    let node = nodes[writer % 2]
                    group.addTask {
                        var count = 0
                        while await !ledger.stopped {
                            count += 1
                            let span = "pg-w\(writer)-\(count)"
                            let trace = "pg-w\(writer)-\(count / 40)"
                            let client = CustodyClient(baseURL: node.base, timeout: .seconds(70), httpClient: http)
                            let sent = ContinuousClock.now
                            do {
                                _ = try await client.recordLog([LogEntry(traceId: trace, spanId: span, source: "ops-factory", operation: "pg.write")])
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

        for round in 0..<3 {
            try await Task.sleep(for: .milliseconds(1500))
            if round == 1 {
                // PostgreSQL dies with every session (and lock); the log goes on taking writes.
                let before = await Self.projections(of: nodes[0])?.applied ?? 0
                try await postgres.kill()
                try await Task.sleep(for: .seconds(1))
                try await postgres.start()
                let restarted = ContinuousClock.now
                var resumed = false
                while ContinuousClock.now - restarted < .seconds(30) {
                    if let state = await Self.projections(of: nodes[0]), state.applied > before, try await Self.writer(of: nodes, within: 1) != nil {
                        resumed = true
                        break
                    }
                    try await Task.sleep(for: .milliseconds(100))
                }
                #expect(resumed, "the projections did not resume within 30 s of PostgreSQL's restart")
                ClusterFaultTests().progress("postgresql round: projections resumed \(ContinuousClock.now - restarted) after the restart")
                continue
            }
            let writer = try #require(await Self.writer(of: nodes, within: 30), "no one node says it applies events")
            let other = nodes.first { $0 !== writer }!
            let killed = ContinuousClock.now
            let applied = await Self.projections(of: other)?.applied ?? 0
            try await writer.kill()
            // The other node takes over, from the checkpoint, and moves it on.
            var tookOver: Duration?
            while ContinuousClock.now - killed < .seconds(30) {
                if let state = await Self.projections(of: other), state.applies, state.applied > applied {
                    tookOver = ContinuousClock.now - killed
                    break
                }
                try await Task.sleep(for: .milliseconds(50))
            }
            ClusterFaultTests().progress(
                "postgresql round \(round): node \(other.name) applies events \(tookOver.map { "\($0)" } ?? "never") after node \(writer.name) was killed"
            )
            #expect(tookOver.map { $0 <= .seconds(10) } == true, "node \(other.name) did not take over within 10 s: \(String(describing: tookOver))")
            try await writer.start()
        }
        await ledger.stop()
        await writers.value

        // Both nodes stand still at one head, applied.
        let heads = try await ClusterFaultTests.appliedHeads(of: nodes)
        #expect(heads[0] > 0 && heads[0] == heads[1], "the nodes do not come to one applied head: \(heads)")

        let acknowledged = await ledger.acknowledged
        #expect(acknowledged.count > 200, "only \(acknowledged.count) spans were acknowledged")
        for node in nodes {
            let (missing, doubled) = try await ClusterFaultTests.missingAndDoubled(acknowledged, operation: "pg.write", on: node)
            #expect(missing == 0 && doubled == 0, "node \(node.name): \(missing) acknowledged spans missing, \(doubled) twice")
        }

        // The shared projections answer as a rebuild of the stream into SQLite.
        for node in nodes { try await node.kill() }
        let rebuilt = ServerFixture.directory()
        defer { removeDataDirectory(rebuilt) }
        let rebuild = try await CustodyCommand.run(["rebuild", "--data-dir", rebuilt, "--log", cluster.urls, "--json"])
        #expect(rebuild.status == 0, "\(rebuild.output) \(rebuild.error)")
        let reference = try SQLiteProjectionStore(path: ProjectionPaths.database(in: rebuilt))
        let location = try PostgreSQLLocation(url: url)
        let differences = try await PostgreSQLProjectionStore.withStore(at: location, logger: Logger(label: "test")) { store in
            try await ProjectionComparison.differences(reference, store)
        }
        #expect(differences.isEmpty, "\(differences.count) differences, first: \(differences.prefix(5))")
        try await reference.close()
    }
}
