import CustodyClient
import CustodyCore
import CustodyLogTesting
import CustodyServerTesting
import Foundation
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Cluster mode as a person runs it: three real nats-server processes (JetStream, R3, clustered
/// on loopback) and two `custody serve --log nats://…` nodes with their own data directories and
/// ports, sharing one signing key file.
@Suite(.serialized, .timeLimit(.minutes(5))) struct ClusterCommandTests {
    /// Starts node `name` on `cluster`.
    static func node(_ name: String, _ cluster: NATSCluster, key: String) async throws -> (CustodyCommand, String, String) {
        let directory = ServerFixture.directory()
        let (server, base) = try await CustodyCommand.serve(
            directory,
            ["--log", cluster.urls, "--node-name", name, "--signing-key", key, "--checkpoint-interval", "0.2"]
        )
        return (server, base, directory)
    }

    /// GET `path` on `base` with `x-custody-min-seq` when given: the status and the JSON.
    static func get(_ base: String, _ path: String, minimumSeq: String? = nil) async throws -> (Int, [String: Any]) {
        var request = URLRequest(url: URL(string: base + path)!)
        if let minimumSeq { request.setValue(minimumSeq, forHTTPHeaderField: "x-custody-min-seq") }
        let (data, response) = try await URLSession.shared.data(for: request)
        let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] ?? [:]
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, object)
    }

    @Test func twoNodesShareOneRecord() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: CustodyExecutable.path), "build the custody executable first")
        let cluster = try await NATSCluster()
        defer { cluster.stop() }
        let (keyFolder, key) = try ServerFixture.sharedSigningKey()
        defer { removeDataDirectory(keyFolder) }
        let (serverA, a, directoryA) = try await Self.node("a", cluster, key: key)
        defer {
            serverA.process.terminate()
            serverA.removeFiles()
            removeDataDirectory(directoryA)
        }
        let (serverB, b, directoryB) = try await Self.node("b", cluster, key: key)
        defer {
            serverB.process.terminate()
            serverB.removeFiles()
            removeDataDirectory(directoryB)
        }
        #expect(serverB.output.contains("Cluster mode: node b, found stream CUSTODY (3 replicas"), "\(serverB.output)")
        let clientA = CustodyClient(baseURL: a)
        let clientB = CustodyClient(baseURL: b)

        // A write on A, read on B at once with the receipt's seq: B waits until it holds it.
        let written = try await clientA.recordLog([
            LogEntry(traceId: "across", spanId: "s1", source: "agent-factory", operation: "agent.plan", durationMs: 12),
            LogEntry(traceId: "across", spanId: "s2", parentSpanId: "s1", source: "data-factory", operation: "data.load", durationMs: 5),
        ])
        let receipt = try #require(written.receipt)
        let (status, trace) = try await Self.get(b, "/api/traces/across", minimumSeq: String(receipt.seq))
        #expect(status == 200, "\(trace)")
        let spans = ((trace["data"] as? [String: Any])?["spans"] as? [[String: Any]]) ?? []
        #expect(Set(spans.compactMap { $0["span_id"] as? String }).isSuperset(of: ["s1", "s2"]), "\(spans)")
        // A seq nobody wrote yet: B waits its read timeout and says the projections are behind
        // (overloaded: 429, retry later).
        let (behind, answer) = try await Self.get(b, "/api/traces/across", minimumSeq: String(receipt.seq + 1_000_000))
        #expect(behind == 429 && (answer["error"] as? [String: Any])?["code"] as? String == "overloaded", "\(behind) \(answer)")
        let (bad, badAnswer) = try await Self.get(b, "/api/traces/across", minimumSeq: "soon")
        #expect(bad == 422 && (badAnswer["error"] as? [String: Any])?["code"] as? String == "invalid_argument", "\(badAnswer)")

        // 200 status updates of one task, split over both nodes at once: one exact chain.
        let task = try await clientA.createTask(orderId: "o-cluster", payload: .object(["kind": .string("agent")]))
        let statuses = ["in_progress", "blocked", "pending", "complete", "failed", "cancelled"]
        let changes = try await withThrowingTaskGroup(of: (UInt64, StatusChange).self) { group in
            for index in 0..<200 {
                let client = index % 2 == 0 ? clientA : clientB
                group.addTask {
                    let change = try await client.updateTaskStatus(taskId: task.uuid, status: statuses[index % statuses.count])
                    return (change.receipt?.seq ?? 0, change)
                }
            }
            var all: [(UInt64, StatusChange)] = []
            for try await change in group { all.append(change) }
            return all
        }
        #expect(changes.count == 200)
        let ordered = changes.sorted { $0.0 < $1.0 }
        #expect(Set(ordered.map(\.0)).count == 200, "two updates share a receipt seq")
        #expect(ordered.first?.1.previousStatus == "pending")
        for (before, after) in zip(ordered, ordered.dropFirst()) {
            #expect(after.1.previousStatus == before.1.status, "seq \(after.0) follows \(before.1.status) but says \(after.1.previousStatus)")
        }
        let last = try #require(ordered.last)
        let (_, readBack) = try await Self.get(a, "/api/tasks/\(task.uuid)", minimumSeq: String(last.0))
        #expect(((readBack["data"] as? [String: Any])?["task"] as? [String: Any])?["status"] as? String == last.1.status)

        // Time travel on B through A's writes: the task as it stood after the 100th update.
        let middle = ordered[99]
        let (_, then) = try await Self.get(b, "/api/tasks/\(task.uuid)?as_of=\(middle.0)", minimumSeq: String(last.0))
        let thenTask = (then["data"] as? [String: Any])?["task"] as? [String: Any]
        #expect(
            thenTask?["status"] as? String == middle.1.status && (then["data"] as? [String: Any])?["as_of_seq"] as? Int == Int(middle.0),
            "\(then)"
        )

        // Replay on B of the trace written on A: B reads it from the stream, and the new trace it
        // writes is read back on A.
        let replay = try await clientB.replayTrace("across", mode: .dryRun, speed: 0)
        #expect(replay.spans >= 2 && replay.status == "completed", "\(replay)")
        var replayed: [[String: Any]] = []
        let replayDeadline = ContinuousClock.now + .seconds(10)
        while replayed.count < 2 && ContinuousClock.now < replayDeadline {
            let (found, document) = try await Self.get(a, "/api/traces/\(replay.newTrace)")
            replayed = found == 200 ? (((document["data"] as? [String: Any])?["spans"] as? [[String: Any]]) ?? []) : []
            if replayed.count < 2 { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(Set(replayed.compactMap { $0["operation"] as? String }).isSuperset(of: ["agent.plan", "data.load"]), "\(replayed)")

        // The live stream on B carries A's writes: from the log after a seq (since_seq), then as
        // they happen, each once and in order.
        let liveSpans = LiveSpans()
        let following = Task {
            try await clientB.followLive(LiveFilter(traceId: ["live-across"]), sinceSeq: last.0) { message in
                if case .span(let span) = message { await liveSpans.add(span.spanId ?? "") }
            }
        }
        defer { following.cancel() }
        _ = try await clientA.recordLog([LogEntry(traceId: "live-across", spanId: "l0", source: "ops-factory", operation: "ops.page")])
        for index in 1...20 {
            _ = try await clientA.recordLog([LogEntry(traceId: "live-across", spanId: "l\(index)", source: "ops-factory", operation: "ops.page")])
        }
        let liveDeadline = ContinuousClock.now + .seconds(10)
        while await liveSpans.ids.filter({ $0.hasPrefix("l") }).count < 21 && ContinuousClock.now < liveDeadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        let liveIDs = await liveSpans.ids.filter { $0.hasPrefix("l") }
        #expect(liveIDs == (0...20).map { "l\($0)" }, "\(liveIDs)")
        following.cancel()

        // Checkpoints: written by one node at a time (the lease), all with the shared key.
        var checkpoints: [[String: Any]] = []
        let deadline = ContinuousClock.now + .seconds(20)
        while checkpoints.isEmpty && ContinuousClock.now < deadline {
            let (_, listed) = try await Self.get(b, "/api/log/checkpoints", minimumSeq: String(last.0))
            checkpoints = ((listed["data"] as? [String: Any])?["checkpoints"] as? [[String: Any]]) ?? []
            if checkpoints.isEmpty { try await Task.sleep(for: .milliseconds(200)) }
        }
        #expect(!checkpoints.isEmpty, "no checkpoint was written")
        #expect(Set(checkpoints.compactMap { $0["key_id"] as? String }).count == 1, "\(checkpoints)")
        let holders = [serverA.error, serverB.error].filter { $0.contains("took the lease") }
        #expect(holders.count == 1, "both nodes took the work lease: \(serverA.error) \(serverB.error)")

        // A killed with SIGKILL: B goes on taking writes and serving A's.
        kill(serverA.process.processIdentifier, SIGKILL)
        try await ChildProcess.exit(serverA.process)
        let afterKill = try await clientB.recordLog([LogEntry(traceId: "after-kill", spanId: "k1", source: "ops-factory", operation: "ops.page")])
        #expect(afterKill.receipt != nil)
        let (ready, readiness) = try await Self.get(b, "/readyz")
        #expect(ready == 200, "\(readiness)")
        // The work lease moves to B within 30 s, and `custody cluster status` says so.
        let leaseDeadline = ContinuousClock.now + .seconds(30)
        var shown = try await CustodyCommand.run(["cluster", "status", "--server", b])
        while !shown.output.contains("Work lease (checkpoints, GitHub outbox): b") && ContinuousClock.now < leaseDeadline {
            try await Task.sleep(for: .milliseconds(500))
            shown = try await CustodyCommand.run(["cluster", "status", "--server", b])
        }
        #expect(
            shown.output.contains("Work lease (checkpoints, GitHub outbox): b") && shown.output.contains("Stream CUSTODY: 3 replicas"),
            "\(shown.output)"
        )
        let lines = shown.output.split(separator: "\n")
        #expect(lines.contains { $0.hasPrefix("b ") && $0.hasSuffix("yes") }, "\(shown.output)")

        // The stream's leader killed: writes through B resume within 10 s (or, when JetStream
        // itself takes longer to elect the next leader, within 2 s of that: see ClusterFaultTests).
        let leader = try #require(await cluster.streamLeader("CUSTODY"))
        try await cluster.kill(leader)
        let killedAt = ContinuousClock.now
        async let elected = ClusterFaultTests.election(in: cluster, replacing: leader, since: killedAt)
        var resumed: Duration?
        while resumed == nil && ContinuousClock.now - killedAt < .seconds(30) {
            do {
                _ = try await clientB.recordLog([LogEntry(traceId: "after-leader", spanId: "l1", source: "ops-factory", operation: "ops.page")])
                resumed = ContinuousClock.now - killedAt
            } catch {
                try await Task.sleep(for: .milliseconds(100))
            }
        }
        let election = await elected
        let within = resumed.map { $0 <= .seconds(10) || (election.map { $0 > .seconds(9) && resumed! <= $0 + .seconds(2) } ?? false) } ?? false
        #expect(
            within,
            "a write went through B \(resumed.map { "\($0)" } ?? "never") after the stream leader's loss; JetStream elected the next after \(election.map { "\($0)" } ?? "?")"
        )

        // Two of the three JetStream servers gone: no quorum, /readyz 503; back: 200.
        let second = (leader + 1) % 3
        try await cluster.kill(second)
        var quorumLost = 0
        let lostBy = ContinuousClock.now + .seconds(20)
        while quorumLost != 503 && ContinuousClock.now < lostBy {
            (quorumLost, _) = try await Self.get(b, "/readyz")
            if quorumLost != 503 { try await Task.sleep(for: .milliseconds(200)) }
        }
        #expect(quorumLost == 503, "/readyz answered \(quorumLost) without quorum")
        try cluster.start(leader)
        try cluster.start(second)
        try await cluster.waitUntilAnswering(leader)
        try await cluster.waitUntilAnswering(second)
        var quorumBack = 0
        let backBy = ContinuousClock.now + .seconds(30)
        while quorumBack != 200 && ContinuousClock.now < backBy {
            (quorumBack, _) = try await Self.get(b, "/readyz")
            if quorumBack != 200 { try await Task.sleep(for: .milliseconds(200)) }
        }
        #expect(quorumBack == 200, "/readyz answered \(quorumBack) with the quorum back")
        // And every span written is on B once, in order.
        let (_, afterLeader) = try await Self.get(b, "/api/traces/after-leader")
        #expect(
            (((afterLeader["data"] as? [String: Any])?["spans"] as? [[String: Any]]) ?? []).filter { $0["span_id"] as? String == "l1" }.count == 1
        )
        // A node has no log files to back up: the stream is backed up with the engine's tools.
        let backup = try await CustodyCommand.run(["backup", "--server", b, "--to", keyFolder + "/backup"])
        #expect(backup.status != 0 && backup.error.contains("engine"), "\(backup.output) \(backup.error)")
        // SIGTERM stops a cluster node cleanly.
        try await serverB.stop()
        #expect(serverB.process.terminationStatus == 0, "\(serverB.error)")
    }
}

/// The span ids a live stream delivered, in order.
actor LiveSpans {
    var ids: [String] = []
    func add(_ id: String) { ids.append(id) }
}
