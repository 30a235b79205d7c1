import AsyncHTTPClient
import CustodyLogTesting
import CustodyServerTesting
import Foundation
import NIOCore
import NIOHTTP1
import Testing

/// The GitHub outbox in cluster mode: two `custody serve --log nats://…` nodes with one token and
/// a fake GitHub, on a three-node JetStream cluster started on loopback. An operation asked of
/// the node that does not hold the work lease is carried out by the one that does; the holder
/// killed with SIGKILL while GitHub is making a change, the other node takes the lease, checks
/// GitHub, and does not make the change twice; one idempotency key given to both nodes at once
/// makes one operation.
@Suite(.serialized, .timeLimit(.minutes(3))) struct GitHubClusterTests {
    final class Node {
        let name: String
        let directory = ServerFixture.directory()
        let output: String
        var process: Process
        var base: String

        init(name: String, process: Process, base: String, output: String) {
            self.name = name
            self.process = process
            self.base = base
            self.output = output
        }
    }

    static func start(_ name: String, cluster: NATSCluster, key: String, fake: FakeGitHub) async throws -> Node {
        let directory = ServerFixture.directory()
        let output = directory + "-output.txt"
        let (process, base) = try await GitHubCrashTests.startServer(
            directory: directory,
            fake: fake,
            output: output,
            arguments: ["--log", cluster.urls, "--node-name", name, "--signing-key", key]
        )
        let node = Node(name: name, process: process, base: base, output: output)
        return node
    }

    /// The node holding the work lease, as `base` reports it (waits up to 30 s for one).
    static func leaseHolder(_ client: HTTPClient, _ base: String) async throws -> String? {
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            let answer = try await GitHubCrashTests.call(client, .GET, base + "/api/admin/cluster")
            if let holder = (answer.json["data"] as? [String: Any])?["work_lease"] as? String { return holder }
            try await Task.sleep(for: .milliseconds(200))
        }
        return nil
    }

    @Test func theOutboxRunsOnTheLeaseHolderAndMovesWithoutDoingAChangeTwice() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: CustodyExecutable.path), "build the custody executable first")
        let cluster = try await NATSCluster()
        defer { cluster.stop() }
        let (keyFolder, key) = try ServerFixture.sharedSigningKey()
        defer { removeDataDirectory(keyFolder) }
        let fake = try await FakeGitHub.start(token: GitHubCrashTests.token)
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        var nodes: [Node] = []
        defer {
            for node in nodes {
                if node.process.isRunning {
                    kill(node.process.processIdentifier, SIGKILL)
                    node.process.waitUntilExit()
                }
                removeDataDirectory(node.directory)
                try? FileManager.default.removeItem(atPath: node.output)
            }
        }
        nodes.append(try await Self.start("a", cluster: cluster, key: key, fake: fake))
        nodes.append(try await Self.start("b", cluster: cluster, key: key, fake: fake))
        let holderName = try #require(try await Self.leaseHolder(client, nodes[1].base))
        let holder = try #require(nodes.first { $0.name == holderName })
        let other = try #require(nodes.first { $0.name != holderName })

        // Asked of the node without the lease, with wait: the holder does it, once.
        let first = try await GitHubCrashTests.call(
            client,
            .POST,
            other.base + "/api/github/issues?wait=true",
            json: #"{"title":"From the other node","body":"one"}"#
        )
        #expect(first.operation["status"] as? String == "succeeded", "\(first.text)")
        #expect(fake.issueCount == 1)

        // One idempotency key on both nodes at once: one operation, one issue.
        let holderBase = holder.base
        let otherBase = other.base
        async let onHolder = GitHubCrashTests.call(
            client,
            .POST,
            holderBase + "/api/github/issues?wait=true",
            json: #"{"title":"Keyed","body":"two"}"#,
            idempotencyKey: "cluster-key-1"
        )
        async let onOther = GitHubCrashTests.call(
            client,
            .POST,
            otherBase + "/api/github/issues?wait=true",
            json: #"{"title":"Keyed","body":"two"}"#,
            idempotencyKey: "cluster-key-1"
        )
        let keyed = try await [onHolder, onOther]
        #expect(keyed.allSatisfy { $0.status == 200 || $0.status == 202 }, "\(keyed.map(\.text))")
        let keyedIDs = Set(keyed.compactMap { $0.operation["id"] as? String })
        #expect(keyedIDs.count == 1, "one key made \(keyedIDs.count) operations: \(keyed.map(\.text))")
        #expect(fake.issueCount == 2)

        // GitHub makes the next issue and never answers; the holder is killed meanwhile.
        fake.script("POST", "/issues", .applyThenHang)
        let requested = try await GitHubCrashTests.call(
            client,
            .POST,
            other.base + "/api/github/issues",
            json: #"{"title":"Mid-flight","body":"three"}"#,
            traceId: "gh-cluster-crash"
        )
        #expect(requested.status == 202, "\(requested.text)")
        let id = try #require(requested.operation["id"] as? String)
        for _ in 0..<400 where fake.issueCount < 3 { try await Task.sleep(for: .milliseconds(25)) }
        try #require(fake.issueCount == 3)
        kill(holder.process.processIdentifier, SIGKILL)
        try await ChildProcess.exit(holder.process)

        // The other node takes the lease (within the lease's 15 s and a second), checks GitHub,
        // finds the issue, and records the operation as done.
        var operation: [String: Any] = [:]
        let deadline = ContinuousClock.now + .seconds(40)
        while ContinuousClock.now < deadline {
            operation = try await GitHubCrashTests.call(client, .GET, other.base + "/api/github/operations/\(id)").operation
            if operation["status"] as? String != "pending" { break }
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(operation["status"] as? String == "succeeded", "\(operation)")
        #expect((operation["result"] as? [String: Any])?["found_existing"] as? Bool == true, "\(operation)")
        #expect(fake.issueCount == 3)
        #expect(fake.received.filter { $0.method == "POST" && $0.path.hasSuffix("/issues") }.count == 3)
        #expect(try await Self.leaseHolder(client, other.base) == other.name)
        let output = try String(contentsOfFile: other.output, encoding: .utf8)
        #expect(output.contains("GitHub operations: on") && !output.contains(GitHubCrashTests.token))

        kill(other.process.processIdentifier, SIGTERM)
        try await ChildProcess.exit(other.process)
        #expect(other.process.terminationStatus == 0, "\(output)")
        try await client.shutdown()
        await fake.stop()
    }
}
