import ArgumentParser
import CustodyClient
import Foundation

/// `custody cluster status`: the stream, every Custody node seen and what is unhealthy, from any
/// node (docs/operations.md, "Cluster mode").
struct ClusterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cluster",
        abstract: "Cluster mode: the stream and the nodes on it.",
        subcommands: [Status.self]
    )

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show the stream (replicas, leader, sequences, bytes), every node seen (applied seq, lag, lease) and what is unhealthy.",
            discussion: "Exits 1 when something is unhealthy. CUSTODY_TOKEN is sent when set (the admin role)."
        )
        @Option(help: "The server (default $CUSTODY_SERVER, else http://127.0.0.1:8787).") var server: String?
        @Flag(help: "Print the server's JSON.") var json = false

        func run() async throws {
            let status: JSON
            do {
                status = try await CustodyClient.command(server: server).clusterStatus()
            } catch {
                printError("custody: \(error.message)")
                throw ExitCode(1)
            }
            if json {
                writeAll(STDOUT_FILENO, try encodeJSON(status) + "\n")
            } else {
                writeAll(STDOUT_FILENO, Self.render(status))
            }
            if case .array(let problems)? = status["unhealthy"], !problems.isEmpty { throw ExitCode(1) }
        }

        static func render(_ status: JSON) -> String {
            func text(_ value: JSON?) -> String {
                switch value {
                case .string(let string)?: string
                case .number(let number)?: number == number.rounded() ? String(Int64(number)) : String(number)
                case .bool(let flag)?: flag ? "yes" : "no"
                default: "-"
                }
            }
            var lines: [String] = []
            if text(status["mode"]) == "embedded" {
                lines.append("Embedded log (not in cluster mode): this node alone.")
            } else {
                let stream = status["stream"]
                lines.append(
                    "Stream \(text(stream?["name"])): \(text(stream?["replicas"])) replicas, leader \(text(stream?["leader"])), "
                        + "messages \(text(stream?["first_sequence"]))…\(text(stream?["last_sequence"])), \(text(stream?["bytes"])) bytes, log head seq \(text(stream?["last_seq"]))"
                )
                lines.append("Work lease (checkpoints, GitHub outbox): \(text(status["work_lease"]))   (asked node: \(text(status["node"])))")
            }
            lines.append("")
            lines.append("NODE".padding(toLength: 20, withPad: " ", startingAt: 0) + "APPLIED    LAG      SEEN     LEASE  ALIVE")
            if case .array(let nodes)? = status["nodes"] {
                for node in nodes {
                    let columns = [
                        text(node["name"]).padding(toLength: 20, withPad: " ", startingAt: 0),
                        text(node["applied_seq"]).padding(toLength: 11, withPad: " ", startingAt: 0),
                        text(node["lag_events"]).padding(toLength: 9, withPad: " ", startingAt: 0),
                        (node["seen_seconds_ago"] == nil ? "-" : text(node["seen_seconds_ago"]) + " s").padding(
                            toLength: 9,
                            withPad: " ",
                            startingAt: 0
                        ),
                        text(node["work_lease"] ?? node["lease_held"]).padding(toLength: 7, withPad: " ", startingAt: 0),
                        text(node["alive"] ?? .bool(true)),
                    ]
                    lines.append(columns.joined())
                }
            }
            if case .array(let problems)? = status["unhealthy"], !problems.isEmpty {
                lines.append("")
                lines.append("Unhealthy:")
                for problem in problems { lines.append("  - \(text(problem))") }
            } else {
                lines.append("")
                lines.append("Healthy.")
            }
            return lines.joined(separator: "\n") + "\n"
        }
    }
}
