import ArgumentParser
import CustodyClient
import Foundation

/// `custody tail`: the live stream of a running server, one line per span (docs/operations.md).
struct TailCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tail",
        abstract: "Follow the live stream: one coloured line per span.",
        discussion: """
            Filters repeat (--source a --source b). Ctrl-C stops. Lines are coloured when the output is a terminal. \
            CUSTODY_TOKEN is sent when set.
            """
    )

    @Option(help: "The server (default $CUSTODY_SERVER, else http://127.0.0.1:8787).") var server: String?
    @Option(help: "Only spans from this source.") var source: [String] = []
    @Option(help: "Only spans of this stage.") var stage: [String] = []
    @Option(help: "Only spans of this operation.") var operation: [String] = []
    @Option(help: "Only spans of this trace.") var trace: [String] = []
    @Option(name: .customLong("since-seq"), help: "First replay every span after this seq from the log.") var sinceSeq: UInt64?

    func run() async throws {
        let client = CustodyClient.command(server: server)
        let colour = ProcessEnvironment.standardOutputIsTerminal
        do {
            try await client.followLive(LiveFilter(source: source, stage: stage, operation: operation, traceId: trace), sinceSeq: sinceSeq) {
                message in
                switch message {
                case .span(let span):
                    writeAll(STDOUT_FILENO, SpanLine.render(span, colour: colour) + "\n")
                case .lagged(let dropped):
                    printError("custody tail: fell behind; \(dropped) spans were dropped")
                }
            }
        } catch {
            printError("custody: \(error.message)")
            throw ExitCode(1)
        }
    }
}

/// One span as one terminal line: time, source, stage, operation, duration, trace.
enum SpanLine {
    static func render(_ span: SpanRecord, colour: Bool) -> String {
        let time = String(span.timestamp.dropFirst(11).prefix(12))
        let duration = span.durationMs.map { String(format: "%9.2f ms", $0) } ?? String(repeating: " ", count: 12)
        let fields = [time, pad(span.source, 16), pad(span.stage, 18), pad(span.operation, 28), duration, span.traceId]
        guard colour else { return fields.joined(separator: "  ") }
        let code = span.isError ? "31" : stageColour(span.stage)
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
