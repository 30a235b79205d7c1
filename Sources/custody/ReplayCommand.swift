import ArgumentParser
import CustodyClient
import Foundation

/// `custody replay`: replays a trace through a running server and prints the summary (docs/operations.md).
struct ReplayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Replay a trace through a running server and print the summary.",
        discussion: "dry-run records the replay only; live also calls each span's worker (SimOps). CUSTODY_TOKEN is sent when set."
    )

    @Argument(help: "The trace to replay.") var traceId: String
    @Option(help: "dry-run or live.") var mode = "dry-run"
    @Option(help: "0 as fast as possible (default), 1 the original pacing, N times faster.") var speed = 0.0
    @Option(help: "The server (default $CUSTODY_SERVER, else http://127.0.0.1:8787).") var server: String?
    @Flag(help: "Print the result as JSON.") var json = false

    func run() async throws {
        guard let mode = ReplayMode(rawValue: mode) else { throw ValidationError("--mode takes dry-run or live") }
        let client = CustodyClient.command(server: server, timeout: .seconds(24 * 3600))
        let result: ReplayResult
        do {
            result = try await client.replayTrace(traceId, mode: mode, speed: speed)
        } catch {
            printError("custody: \(error.message)")
            throw ExitCode(1)
        }
        if json {
            print(try encodeJSON(result))
        } else {
            print("replay \(result.status): \(result.fromTrace) → \(result.newTrace)")
            print("  mode \(result.mode.rawValue), speed \(speed == 0 ? "as fast as possible" : "\(speed)×")")
            print("  \(result.spans) spans replayed, \(result.errors ?? 0) errors, \(String(format: "%.1f", result.durationMs)) ms")
            if let undispatched = result.undispatched, !undispatched.isEmpty {
                let list = undispatched.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
                print("  not dispatched (no worker configured): \(list) — this live replay did not act out those spans")
            }
            print("  see it: custody trace show \(result.newTrace)")
        }
    }
}
