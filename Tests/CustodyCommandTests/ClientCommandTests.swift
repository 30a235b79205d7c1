import CustodyClient
import CustodyLogTesting
import CustodyServerTesting
import Foundation
import Testing

/// The client commands against a server that requires bearer tokens: with `CUSTODY_TOKEN` they
/// work (`trace show`, `tail`), without it they fail with the server's own sentence.
@Suite(.timeLimit(.minutes(2))) struct ClientCommandTests {
    @Test func traceShowAndTailSendTheTokenFromTheEnvironment() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: CustodyExecutable.path), "build the custody executable first")
        let directory = ServerFixture.directory()
        defer { removeDataDirectory(directory) }
        let tokens = "operator:op-secret-1,ingest:in-secret-2"
        let (server, base) = try await CustodyCommand.serve(directory, environment: ["CUSTODY_TOKENS": tokens])
        defer { server.removeFiles() }
        do {
            let ingest = CustodyClient(baseURL: base, token: "in-secret-2")
            _ = try await ingest.recordLog([
                LogEntry(traceId: "cli-trace", spanId: "a1", source: "agent-factory", operation: "agent.plan", durationMs: 12),
                LogEntry(traceId: "cli-trace", spanId: "b2", parentSpanId: "a1", source: "data-factory", operation: "data.load", durationMs: 5),
            ])

            // trace show: a waterfall with both spans, the child indented under its parent.
            let shown = try await CustodyCommand.run(
                ["trace", "show", "cli-trace", "--server", base],
                environment: ["CUSTODY_TOKEN": "op-secret-1"]
            )
            #expect(shown.status == 0, "\(shown.error)")
            #expect(shown.output.contains("trace cli-trace  2 spans"), "\(shown.output)")
            #expect(shown.output.contains("agent-factory agent.plan") && shown.output.contains("  data-factory data.load"), "\(shown.output)")
            // --critical-path: the parent holds the path 7 ms of its 12, its child 5.
            let path = try await CustodyCommand.run(
                ["trace", "show", "cli-trace", "--critical-path", "--server", base],
                environment: ["CUSTODY_TOKEN": "op-secret-1"]
            )
            #expect(path.status == 0, "\(path.error)")
            #expect(
                path.output.contains("(7.00 ms on the critical path)") && path.output.contains("(5.00 ms on the critical path)"),
                "\(path.output)"
            )
            #expect(
                path.output.contains("critical path: 2 spans; by source: agent-factory 7.00 ms (58%), data-factory 5.00 ms (42%)"),
                "\(path.output)"
            )
            // trace graph: the hand-off from agent-factory to data-factory over the last hour.
            let graph = try await CustodyCommand.run(["trace", "graph", "--server", base], environment: ["CUSTODY_TOKEN": "op-secret-1"])
            #expect(graph.status == 0, "\(graph.error)")
            #expect(graph.output.contains("Custody graph from "), "\(graph.output)")
            #expect(
                graph.output.split(separator: "\n").contains {
                    $0.hasPrefix("agent-factory → data-factory") && $0.split(separator: " ").contains("1")
                },
                "\(graph.output)"
            )
            // query: the trace with a slow data-factory span; a metrics query drawn; a query
            // that does not parse, marked at its column.
            let token = ["CUSTODY_TOKEN": "op-secret-1"]
            let found = try await CustodyCommand.run(
                ["query", #"{ source = "data-factory" && duration > 1ms }"#, "--server", base],
                environment: token
            )
            #expect(found.status == 0 && found.output.contains("cli-trace"), "\(found.output) \(found.error)")
            let drawn = try await CustodyCommand.run(
                ["query", #"{ source = "agent-factory" } | rate() by (source)"#, "--server", base],
                environment: token
            )
            #expect(
                drawn.status == 0 && drawn.output.contains(#"{source="agent-factory"}"#) && drawn.output.contains("█"),
                "\(drawn.output) \(drawn.error)"
            )
            let broken = try await CustodyCommand.run(["query", "{ duration > 1 }", "--server", base], environment: token)
            #expect(broken.status != 0 && broken.error.contains("              ^ expected a duration"), "\(broken.error)")
            let unauthorized = try await CustodyCommand.run(["trace", "show", "cli-trace", "--server", base], environment: ["CUSTODY_TOKEN": ""])
            #expect(unauthorized.status != 0 && unauthorized.error.contains("token"), "\(unauthorized.error)")

            // tail: follows the stream with the token, from the log (since seq 0) on.
            let tail = try CustodyCommand.start(
                ["tail", "--server", base, "--trace", "cli-trace", "--since-seq", "0"],
                environment: ["CUSTODY_TOKEN": "op-secret-1"]
            )
            defer { tail.removeFiles() }
            let lines = try await ChildProcess.text(of: tail.outputPath, containing: "data.load", seconds: 10)
            #expect(lines.contains("agent.plan") && lines.contains("data.load"), "\(lines) \(tail.error)")
            _ = try await ingest.recordLog([LogEntry(traceId: "cli-trace", source: "ui-factory", operation: "ui.live")])
            let live = try await ChildProcess.text(of: tail.outputPath, containing: "ui.live", seconds: 10)
            #expect(live.contains("ui.live"), "\(live)")
            tail.process.interrupt()
            try await ChildProcess.exit(tail.process)

            let refusedTail = try await CustodyCommand.run(["tail", "--server", base], environment: ["CUSTODY_TOKEN": ""])
            #expect(refusedTail.status != 0 && refusedTail.error.contains("token"), "\(refusedTail.error)")
            try await server.stop()
        } catch {
            try? await server.stop()
            throw error
        }
    }
}
