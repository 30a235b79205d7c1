import CustodyClient
import CustodyCore
import CustodyLogTesting
import CustodyServerTesting
import Foundation
import Testing

/// Retention in cluster mode as a person runs it (docs/operations.md, "Retention"): three real
/// nats-server processes (JetStream, R3) and two `custody serve --log` nodes with a byte limit,
/// spans written through both. The stream's oldest messages are purged only once both nodes hold
/// their own snapshot; the state from before reads back unchanged on both; reads into the deleted
/// range answer 410 on both; a pass killed (both nodes, SIGKILL) between its record and the purge
/// is finished after the restart; a node that was away while the stream was purged past its
/// projections refuses to start and says why; and every node's projections equal a rebuild from
/// its snapshot and the stream, row for row.
@Suite(.serialized, .timeLimit(.minutes(8))) struct ClusterRetentionTests {
    static let segmentBytes: Int64 = 65_536
    static let maxBytes: Int64 = 400_000

    /// A node that can be killed and started again on its data directory.
    final class Node: @unchecked Sendable {
        // @unchecked Sendable: changed only by the test's own task, one step at a time.
        let name: String
        let directory = ServerFixture.directory()
        var server: CustodyCommand?
        var client = CustodyClient(baseURL: "http://127.0.0.1:1")

        init(name: String) { self.name = name }

        func start(_ cluster: NATSCluster, key: String, environment: [String: String] = [:]) async throws {
            let (server, base) = try await CustodyCommand.serve(
                directory,
                [
                    "--log", cluster.urls, "--node-name", name, "--signing-key", key, "--checkpoint-interval", "3600",
                    "--segment-bytes", String(ClusterRetentionTests.segmentBytes), "--retention-max-bytes",
                    String(ClusterRetentionTests.maxBytes), "--retention-interval", "0.5",
                ],
                environment: environment
            )
            self.server = server
            client = CustodyClient(baseURL: base)
        }

        func kill() async throws {
            guard let server else { return }
            Foundation.kill(server.process.processIdentifier, SIGKILL)
            try await ChildProcess.exit(server.process)
            server.removeFiles()
            self.server = nil
        }

        func stop() {
            if let server {
                server.process.terminate()
                server.process.waitUntilExit()
                server.removeFiles()
            }
            removeDataDirectory(directory)
        }
    }

    /// Waits (at most 60 s) until `node` has followed the newest deletion recorded and the stream
    /// starts right after it, two looks 1 s apart.
    static func waitUntilSettled(_ node: Node) async throws {
        let deadline = ContinuousClock.now + .seconds(60)
        var settledLooks = 0
        while settledLooks < 2 {
            let status = try await RetentionCommandTests.retention(node.client)
            let last = status["latest"]?["last_seq"]?.numberValue ?? 0
            let settled = status["followed_through"]?.numberValue == last && status["first_seq"]?.numberValue == last + 1
            settledLooks = settled ? settledLooks + 1 : 0
            guard ContinuousClock.now < deadline else {
                throw CustodyCommand.CommandFailed(message: "node \(node.name)'s retention did not settle: \(status)")
            }
            try await Task.sleep(for: .seconds(1))
        }
    }

    /// The stream as `/api/admin/cluster` shows it.
    static func stream(_ client: CustodyClient) async throws -> JSON {
        try await client.clusterStatus()["stream"] ?? .null
    }

    @Test func bothNodesFollowTheStreamsRetentionThroughKills() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: CustodyExecutable.path), "build the custody executable first")
        let cluster = try await NATSCluster()
        defer { cluster.stop() }
        let (keyFolder, key) = try ServerFixture.sharedSigningKey()
        defer { removeDataDirectory(keyFolder) }
        let a = Node(name: "a")
        let b = Node(name: "b")
        defer {
            a.stop()
            b.stop()
        }
        do {
            try await Self.followRetention(cluster, key: key, a: a, b: b)
        } catch {
            // What the nodes said and whether they still run: a request a node did not answer
            // is otherwise only "could not be reached".
            for node in [a, b] {
                Issue.record("node \(node.name) at \(node.client.baseURL): \(await node.server?.settledDiagnosis() ?? "not running")")
            }
            throw error
        }
    }

    static func followRetention(_ cluster: NATSCluster, key: String, a: Node, b: Node) async throws {
        try await a.start(cluster, key: key)
        try await b.start(cluster, key: key)
        #expect(a.server?.output.contains("purging allowed for retention") == true, "\(a.server?.output ?? "")")

        // State from before the range retention will delete, written through b; a trace through a.
        let task = try await b.client.createTask(orderId: "o-cluster-retained", payload: .object(["n": .number(1)]))
        _ = try await b.client.updateTaskStatus(taskId: task.uuid, status: "in_progress")
        let written = try await a.client.recordLog([LogEntry(traceId: "cluster-early", spanId: "e1", source: "agent-factory", operation: "plan")])
        let before = try await b.client.getTask(task.uuid)
        let early = max(written.lastSeq, before.lastSeq)

        // Spans through both nodes until the stream is purged past the early writes.
        var round = 0
        var first: UInt64 = 0
        while first <= early && round < 40 {
            try await RetentionCommandTests.write(a.client, requests: 10, prefix: "a\(round)")
            try await RetentionCommandTests.write(b.client, requests: 10, prefix: "b\(round)")
            first = UInt64(try await RetentionCommandTests.retention(a.client)["first_seq"]?.numberValue ?? 0)
            round += 1
        }
        try await RetentionCommandTests.waitForRetention(a.client, past: early)
        try await RetentionCommandTests.waitForRetention(b.client, past: early)
        // The stream stays under the limit plus a run of messages (a segment's worth) and the
        // messages after the last whole run.
        var streamBytes = Int64.max
        let deadline = ContinuousClock.now + .seconds(30)
        while streamBytes > Self.maxBytes + 2 * Self.segmentBytes && ContinuousClock.now < deadline {
            streamBytes = Int64(try await Self.stream(a.client)["bytes"]?.numberValue ?? 1e18)
            if streamBytes > Self.maxBytes + 2 * Self.segmentBytes { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(streamBytes <= Self.maxBytes + 2 * Self.segmentBytes, "the stream holds \(streamBytes) bytes")
        let streamFirst = try await Self.stream(a.client)["first_sequence"]?.numberValue ?? 0
        #expect(streamFirst > 1)

        // On both nodes: the task reads back unchanged; 410 before the snapshot and for the trace.
        for node in [a, b] {
            let after = try await node.client.getTask(task.uuid)
            #expect(after.status == "in_progress" && after.lastSeq == before.lastSeq && after.payload == before.payload, "node \(node.name)")
            let tooEarly = await #expect(throws: CustodyClientError.self) { _ = try await node.client.getTask(task.uuid, asOf: "1") }
            #expect(tooEarly?.status == 410 && tooEarly?.code == "beyond_retention", "node \(node.name): \(String(describing: tooEarly))")
            let gone = await #expect(throws: CustodyClientError.self) { _ = try await node.client.getTrace("cluster-early") }
            #expect(gone?.status == 410, "node \(node.name): \(String(describing: gone))")
            guard case .array(let nodes)? = try await node.client.clusterStatus()["nodes"] else {
                Issue.record("node \(node.name): no nodes in the cluster status")
                continue
            }
            #expect(nodes.count == 2 && nodes.allSatisfy { ($0["snapshot_seq"]?.numberValue ?? 0) >= Double(first - 1) }, "\(nodes)")
        }

        // A pass killed between its record and the purge: both nodes SIGKILLed there.
        try await a.kill()
        try await b.kill()
        try await a.start(cluster, key: key, environment: ["CUSTODY_RETENTION_STOP_AT": "before-deletion"])
        try await b.start(cluster, key: key, environment: ["CUSTODY_RETENTION_STOP_AT": "before-deletion"])
        // The lease the killed nodes held passes on once it expires; spans keep coming meanwhile.
        var stopped = false
        round = 0
        let stopDeadline = ContinuousClock.now + .seconds(90)
        while !stopped && ContinuousClock.now < stopDeadline {
            try await RetentionCommandTests.write(b.client, requests: 4, prefix: "k\(round)")
            stopped = [a, b].contains { node in
                (try? String(contentsOfFile: node.server?.errorPath ?? "", encoding: .utf8))?.contains("retention stopped at before-deletion") == true
            }
            round += 1
            try await Task.sleep(for: .milliseconds(200))
        }
        try #require(stopped, "no pass reached the purge")
        let pending = try #require(try await RetentionCommandTests.retention(b.client)["latest"]?["last_seq"]?.numberValue)
        let purgedBefore = try await Self.stream(b.client)["first_sequence"]?.numberValue ?? 0
        try await a.kill()
        try await b.kill()
        // Node b comes back; a stays away while b finishes the pass and deletes more.
        try await b.start(cluster, key: key)
        try await RetentionCommandTests.waitForRetention(b.client, past: UInt64(pending), seconds: 90)
        #expect(try await Self.stream(b.client)["first_sequence"]?.numberValue ?? 0 > purgedBefore)
        // Once a is no longer seen (10 s), b deletes past what a's projections applied.
        let applied = try SQLiteProjectionStore.appliedSeq(ofDatabaseAt: ProjectionPaths.database(in: a.directory))
        var awayFirst: UInt64 = 0
        let awayDeadline = ContinuousClock.now + .seconds(90)
        round = 0
        while awayFirst <= applied + 1 && ContinuousClock.now < awayDeadline {
            try await RetentionCommandTests.write(b.client, requests: 4, prefix: "away\(round)")
            awayFirst = UInt64(try await RetentionCommandTests.retention(b.client)["first_seq"]?.numberValue ?? 0)
            round += 1
            try await Task.sleep(for: .milliseconds(200))
        }
        // Node a's projections end before the stream now starts: it refuses, saying why.
        #expect(awayFirst > applied + 1, "the stream starts at seq \(awayFirst), node a has applied \(applied)")
        do {
            let refused = try await CustodyCommand.run([
                "serve", "--data-dir", a.directory, "--port", "0", "--rpc-port", "0", "--otlp-grpc-port", "0", "--otlp-http-port", "0",
                "--log", cluster.urls, "--node-name", "a", "--signing-key", key,
            ])
            #expect(refused.status != 0 && refused.error.contains("retention deleted seqs"), "\(refused.error)")
        }

        // Every node's projections equal a rebuild of them from its snapshot and the stream, once
        // it has followed the newest deletion and the stream is purged past it (killed in
        // between, a node's projections lack spans the stream still holds; it prunes them again
        // when it starts).
        try await Self.waitUntilSettled(b)
        try await b.kill()
        let copy = ServerFixture.directory()
        defer { removeDataDirectory(copy) }
        try FileManager.default.copyItem(atPath: b.directory, toPath: copy)
        let rebuilt = try await CustodyCommand.run(["rebuild", "--data-dir", copy, "--log", cluster.urls])
        #expect(rebuilt.status == 0, "rebuild: \(rebuilt.output) \(rebuilt.error)")
        let incremental = try RetentionCommandTests.expectSameRows(kept: b.directory, rebuilt: copy)
        #expect((incremental["tasks"]?.count ?? 0) == 1 && (incremental["retired_traces"]?.count ?? 0) > 0)
    }
}
