import AsyncHTTPClient
import CustodyClient
import CustodyCore
import CustodyLog
import CustodyLogTesting
import CustodyServerTesting
import Foundation
import NIOCore
import Testing

/// Every API answer that reads the projections is the same, byte for byte, whichever store holds
/// them (docs/projections.md): one varied log — tasks and their statuses, factory errors, follow-ups,
/// delivery reports, spans (errors among them, names that need escaping), replays, GitHub
/// operations, signed checkpoints — served by one `custody serve` over SQLite and one over
/// PostgreSQL, asked the same questions.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct PostgreSQLAnswersTests {
    @Test func everyReadingRouteAnswersTheSameOverSQLiteAndPostgreSQL() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: CustodyExecutable.path), "build the custody executable first")
        let postgres = try await PostgreSQLServer()
        defer { postgres.stop() }
        let (keyFolder, key) = try ServerFixture.sharedSigningKey()
        defer { removeDataDirectory(keyFolder) }
        let github = try await FakeGitHub.start(token: "ghp_answersToken0123456789abcdefghij")
        let sqliteDirectory = ServerFixture.directory()
        let postgresDirectory = ServerFixture.directory()
        defer {
            removeDataDirectory(sqliteDirectory)
            removeDataDirectory(postgresDirectory)
        }

        // The traffic, through the API of a server over SQLite.
        let (writer, base) = try await CustodyCommand.serve(
            sqliteDirectory,
            ["--signing-key", key, "--checkpoint-interval", "0.2"],
            environment: ["GITHUB_TOKEN": github.token, "GITHUB_API_URL": github.baseURL, "GITHUB_OWNER": "acme", "GITHUB_REPO": "widgets"]
        )
        let client = CustodyClient(baseURL: base)
        var random = SplitMix64(seed: 424_242)
        var tasks: [String] = []
        var traces: [String] = []
        var operations: [String] = []
        let orders = (0..<6).map { "order-\($0)" }
        let names = ["plan", "build", "semi;colon", "é ✓ 漢字", "back\\slash", "%_like", "quote'\""]
        for step in 0..<400 {
            let order = orders[Int(random.next(upperBound: UInt64(orders.count)))]
            switch random.next(upperBound: 10) {
            case 0:
                tasks.append(try await client.createTask(orderId: order, payload: .object(["step": .number(Double(step))])).uuid)
            case 1 where !tasks.isEmpty:
                let status = ["in_progress", "complete", "failed", "blocked"][Int(random.next(upperBound: 4))]
                _ = try await client.updateTaskStatus(taskId: tasks[Int(random.next(upperBound: UInt64(tasks.count)))], status: status)
            case 2:
                _ = try await client.recordFactoryError(source: "data-factory", message: "failed \(step)", orderId: order, taskUUID: tasks.last)
            case 3:
                _ = try await client.submitOpsFollowup(orderId: order, type: "qa", note: "note \(step)", impact: ["low", "medium", "high"][step % 3])
            case 4 where step % 7 == 0:
                _ = try? await client.finalizeDeliveryReport(orderId: order)
            case 5 where step % 9 == 0 && !traces.isEmpty:
                _ = try await client.replayTrace(traces[Int(random.next(upperBound: UInt64(traces.count)))])
            case 6 where step % 13 == 0:
                operations.append(try await client.createIssue(title: "issue \(step)", idempotencyKey: "issue-\(step)").id)
            default:
                if traces.isEmpty || random.next(upperBound: 4) == 0 { traces.append("answers-\(step)") }
                let trace = traces[traces.count - 1 - Int(random.next(upperBound: UInt64(min(traces.count, 4))))]
                let entries = (0..<(1 + Int(random.next(upperBound: 6)))).map { index in
                    LogEntry(
                        traceId: trace,
                        spanId: "s\(step)-\(index)",
                        // Parents in the same request, in an earlier one, or never recorded.
                        parentSpanId: index > 0 ? "s\(step)-\(index - 1)" : step % 3 == 0 ? "s\(step - 1)-0" : nil,
                        source: ["agent-factory", "ui-factory", "orchestrator"][Int(random.next(upperBound: 3))],
                        stage: ["processing", "error", "before_rpc"][Int(random.next(upperBound: 3))],
                        operation: names[Int(random.next(upperBound: UInt64(names.count)))],
                        taskUUID: tasks.last,
                        durationMs: Double(random.next(upperBound: 5000)) / 10
                    )
                }
                _ = try await client.recordLog(entries)
            }
        }
        // Everything started has finished (replays, GitHub operations) before the log is copied.
        let settledBy = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < settledBy {
            let running = try await client.replays(limit: 1000).filter { $0.status == "running" }.count
            var pending = 0
            for id in operations where try await client.getOperation(id).status == "pending" { pending += 1 }
            if running == 0 && pending == 0 { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        try await writer.stop()
        writer.removeFiles()
        await github.stop()
        // The same log for both: the SQLite server's, without its projections.
        try FileManager.default.createDirectory(atPath: postgresDirectory, withIntermediateDirectories: true)
        for name in try FileManager.default.contentsOfDirectory(atPath: sqliteDirectory) where !name.hasPrefix("projections") {
            try FileManager.default.copyItem(atPath: sqliteDirectory + "/" + name, toPath: postgresDirectory + "/" + name)
        }
        let copiedAt = Date()
        let url = "postgresql://\(PostgreSQLServer.user)@127.0.0.1:\(postgres.port)/postgres"
        let quiet = ["--signing-key", key, "--checkpoint-interval", "3600"]
        let (onSQLite, sqliteBase) = try await CustodyCommand.serve(sqliteDirectory, quiet)
        let (onPostgres, postgresBase) = try await CustodyCommand.serve(postgresDirectory, quiet + ["--projections", url])
        defer {
            onSQLite.process.terminate()
            onPostgres.process.terminate()
            onSQLite.process.waitUntilExit()
            onPostgres.process.waitUntilExit()
            onSQLite.removeFiles()
            onPostgres.removeFiles()
        }

        // Every question, of both.
        let until = ISO8601DateFormatter().string(from: copiedAt)
        // The custody graph over the traffic's hours, whole and by source — first: the routes that
        // are traced (a delivery's follow-ups, say) add request spans of their own timing to
        // the graph's last minute on each server.
        let since = ISO8601DateFormatter().string(from: copiedAt.addingTimeInterval(-7200))
        var paths = ["", "&source=orchestrator", "&source=agent-factory", "&source=no-such-source"].map {
            "/api/graph?since=\(percent(since))&until=\(percent(until))" + $0
        }
        paths += ["/api/tasks?limit=1000", "/api/replays?limit=1000", "/api/github/operations", "/api/log/checkpoint"]
        paths += ["/api/log/checkpoints?limit=1000", "/api/tasks?status=complete", "/api/github/operations?status=succeeded"]
        for uuid in tasks + ["no-such-task"] { paths.append("/api/tasks/\(uuid)") }
        for order in orders {
            paths += [
                "/api/tasks?order_id=\(order)", "/api/delivery/\(order)/followups", "/api/delivery/\(order)/report",
                "/api/tasks?order_id=\(order)&status=failed&limit=3",
            ]
        }
        for trace in traces + ["no-such-trace"] { paths += ["/api/traces/\(trace)", "/api/traces/\(trace)/verification"] }
        for (left, right) in zip(traces, traces.dropFirst()).prefix(10) { paths.append("/api/traces/\(left)/compare/\(right)") }
        for id in operations + ["no-such-operation"] { paths.append("/api/github/operations/\(id)") }
        for seq in stride(from: 1, to: 400, by: 37) { paths.append("/api/log/proof?seq=\(seq)") }
        var searches = [
            "", "source=orchestrator", "operation=build", "stage=error", "error=true", "error=true&source=ui-factory", "min_duration_ms=300",
            "q=answers-1",
        ]
        searches += [
            "operation=\(percent("back\\slash"))", "q=\(percent("%"))", "q=\(percent("é"))", "source=agent-factory&stage=processing&limit=7",
        ]
        for search in searches { paths.append("/api/traces?until=\(percent(until))&limit=500" + (search.isEmpty ? "" : "&" + search)) }

        let http = HTTPClient.shared
        var compared = 0
        var differing: [String] = []
        for path in paths {
            let left = try await Self.body(of: sqliteBase + path, http)
            let right = try await Self.body(of: postgresBase + path, http)
            compared += 1
            if left != right {
                // From a little before the first difference.
                let same = zip(left, right).prefix { $0 == $1 }.count
                let (l, r) = (left.dropFirst(max(0, same - 100)).prefix(300), right.dropFirst(max(0, same - 100)).prefix(300))
                differing.append("\(path) (from character \(max(0, same - 100))):\n  sqlite:     \(l)\n  postgresql: \(r)")
            }
        }
        #expect(compared > 200)
        #expect(differing.isEmpty, "\(differing.count) of \(compared) answers differ:\n\(differing.prefix(3).joined(separator: "\n"))")
        // The PostgreSQL server said which store it used.
        let stats = try await CustodyClient(baseURL: postgresBase).adminStats()
        #expect(stats["projections"]?["engine"]?.stringValue == "postgresql")
    }

    /// The status and body of a GET, as text.
    static func body(of url: String, _ http: HTTPClient) async throws -> String {
        let response = try await http.execute(HTTPClientRequest(url: url), timeout: .seconds(30))
        let body = try await response.body.collect(upTo: 64 << 20)
        return "\(response.status) " + String(buffer: body)
    }
}

func percent(_ text: String) -> String {
    text.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? text
}
