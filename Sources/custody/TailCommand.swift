import ArgumentParser
import Foundation
import HummingbirdWSClient
import Logging

/// `custody tail`: the live stream of a running server, one line per span (CLI.md).
struct TailCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tail",
        abstract: "Follow the live stream: one coloured line per span.",
        discussion: "Filters repeat (--source a --source b). Ctrl-C stops. Lines are coloured when the output is a terminal."
    )

    @Option(help: "The server (default $CUSTODY_SERVER, else http://127.0.0.1:8787).") var server: String?
    @Option(help: "Only spans from this source.") var source: [String] = []
    @Option(help: "Only spans of this stage.") var stage: [String] = []
    @Option(help: "Only spans of this operation.") var operation: [String] = []
    @Option(help: "Only spans of this trace.") var trace: [String] = []
    @Option(name: .customLong("since-seq"), help: "First replay every span after this seq from the log.") var sinceSeq: UInt64?

    func run() async throws {
        let base = ServerURL.resolve(server)
        var query: [String] = []
        for (name, values) in [("source", source), ("stage", stage), ("operation", operation), ("trace_id", trace)] {
            for value in values { query.append("\(name)=\(value.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed) ?? value)") }
        }
        if let sinceSeq { query.append("since_seq=\(sinceSeq)") }
        let url =
            base.replacingOccurrences(of: "http://", with: "ws://").replacingOccurrences(of: "https://", with: "wss://")
            + "/api/traces/live" + (query.isEmpty ? "" : "?" + query.joined(separator: "&"))
        let colour = ProcessEnvironment.standardOutputIsTerminal
        do {
            try await WebSocketClient.connect(
                url: url,
                configuration: .init(maxFrameSize: 1 << 20),
                logger: Logger(label: "custody.tail")
            ) { inbound, _, _ in
                for try await message in inbound.messages(maxSize: 1 << 20) {
                    guard case .text(let text) = message,
                        let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]
                    else { continue }
                    switch object["event"] as? String {
                    case "trace":
                        writeAll(STDOUT_FILENO, SpanLine.render(object["data"] as? [String: Any] ?? [:], colour: colour) + "\n")
                    case "lagged":
                        printError("custody tail: fell behind; \(object["dropped"] as? Int ?? 0) spans were dropped")
                    default:
                        break
                    }
                }
            }
        } catch {
            printError("custody: cannot follow \(url): \(error)")
            throw ExitCode(1)
        }
    }
}

/// One span as one terminal line: time, source, stage, operation, duration, trace.
enum SpanLine {
    static func render(_ span: [String: Any], colour: Bool) -> String {
        let time = (span["timestamp"] as? String).map { String($0.dropFirst(11).prefix(12)) } ?? "-"
        let stage = span["stage"] as? String ?? "-"
        let isError = stage == "error" || stage == "replay_error" || (span["details"] as? [String: Any])?["error"] != nil
        let duration = (span["duration_ms"] as? Double).map { String(format: "%9.2f ms", $0) } ?? String(repeating: " ", count: 12)
        let fields = [
            time, pad(span["source"] as? String ?? "-", 16), pad(stage, 18), pad(span["operation"] as? String ?? "-", 28), duration,
            span["trace_id"] as? String ?? "-",
        ]
        guard colour else { return fields.joined(separator: "  ") }
        let code = isError ? "31" : stageColour(stage)
        return
            "\u{1B}[2m\(fields[0])\u{1B}[0m  \u{1B}[1m\(fields[1])\u{1B}[0m  \u{1B}[\(code)m\(fields[2])\u{1B}[0m  \(fields[3])  \(fields[4])  \u{1B}[2m\(fields[5])\u{1B}[0m"
    }

    static func stageColour(_ stage: String) -> String {
        switch stage {
        case "request_received", "response_sent": "36"
        case "processing": "32"
        case "before_rpc", "after_rpc", "before_call", "after_call", "outbound_call": "33"
        case let replay where replay.hasPrefix("replay") || replay == "sim_replay": "35"
        default: "34"
        }
    }

    static func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? String(text.prefix(width)) : text + String(repeating: " ", count: width - text.count)
    }
}

/// The server a client command talks to: the flag, else `CUSTODY_SERVER`, else the default.
enum ServerURL {
    static func resolve(_ flag: String?) -> String {
        let url = flag ?? ProcessEnvironment.value("CUSTODY_SERVER") ?? "http://127.0.0.1:8787"
        return url.hasSuffix("/") ? String(url.dropLast()) : url
    }
}
