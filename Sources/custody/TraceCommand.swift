import ArgumentParser
import CustodyClient
import CustodyCore
import Foundation

/// `custody trace show`: a trace from a running server as a waterfall in the terminal.
struct TraceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trace",
        abstract: "Look at traces on a running server.",
        subcommands: [Show.self, Graph.self]
    )

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show a trace as a waterfall: one row per span, bars on a shared time axis.",
            discussion: """
                CUSTODY_TOKEN is sent when set. --verify checks here, not on the server, that every span shown is \
                in the log under a signed checkpoint: proofs are fetched (GET /api/log/proof), the hash chain \
                recomputed over their records, the checkpoints' Ed25519 signatures checked, and each span's \
                record decoded and compared with the span shown. Pin the key with --public-key HEX or \
                --checkpoint FILE (saved by `custody log checkpoint --save`); a key the pinned one rotated to \
                is accepted. Without a pin the server's own key is taken on first use, and the output says so. \
                Exits 1 when a span is not verified. --critical-path marks the spans that decided the trace's \
                latency (GET /api/traces/{id}/critical-path) with their time on the path, and sums it by source.
                """
        )

        @Argument(help: "The trace id.") var traceId: String
        @Option(help: "The server (default $CUSTODY_SERVER, else http://127.0.0.1:8787).") var server: String?
        @Option(help: "Columns for the bars.") var width = 48
        @Flag(help: "Check every span against the server's signed checkpoints, here.") var verify = false
        @Flag(name: .customLong("critical-path"), help: "Mark the critical path and show its time by source.") var criticalPath = false
        @Option(name: .customLong("public-key"), help: "With --verify: the signing key to trust (64 hex digits).") var publicKey: String?
        @Option(help: "With --verify: trust the key of this saved checkpoint.") var checkpoint: String?

        func validate() throws {
            if (publicKey != nil || checkpoint != nil) && !verify { throw ValidationError("--public-key and --checkpoint go with --verify") }
            if let publicKey, Hex.decode(publicKey)?.count != LogCheckpoint.publicKeyLength {
                throw ValidationError("--public-key takes an Ed25519 public key: 64 hex digits")
            }
        }

        func run() async throws {
            let client = CustodyClient.command(server: server)
            let document: TraceDocument
            var path: CriticalPathDocument?
            do {
                document = try await client.getTrace(traceId)
                if criticalPath { path = try await client.criticalPath(traceId) }
            } catch {
                printError("custody: \(error.message)")
                throw ExitCode(1)
            }
            print(Waterfall.render(document, width: max(width, 10), colour: ProcessEnvironment.standardOutputIsTerminal, criticalPath: path))
            guard verify else { return }
            var pinned: Set<[UInt8]> = []
            if let publicKey, let key = Hex.decode(publicKey) { pinned.insert(key) }
            if let checkpoint {
                let saved = try withCleanErrors { try LogCommand.Verify.loadCheckpoint(checkpoint) }
                guard saved.hasValidSignature else {
                    printError("custody: the signature of the saved checkpoint \(checkpoint) does not hold")
                    throw ExitCode(1)
                }
                pinned.insert(saved.publicKey)
            }
            let check = await TraceProofCheck(client: client, pinned: pinned).verify(document)
            print(check.summary)
            if !check.verification.isVerified { throw ExitCode(1) }
        }
    }
}

/// A trace as text: a header, then one row per span, indented under its parent, with a bar
/// placed on the trace's time axis; with a critical path, its spans marked `◆` with their time on
/// it, and the time by source below.
enum Waterfall {
    static func render(_ trace: TraceDocument, width: Int, colour: Bool, criticalPath: CriticalPathDocument? = nil) -> String {
        let onPath = Dictionary((criticalPath?.path ?? []).map { ($0.seq, $0.selfMs) }, uniquingKeysWith: { first, _ in first })
        let spans = trace.spans
        let summary = trace.summary
        // In Double: a client's timestamps and durations may be anywhere in range.
        let startTimes = spans.map { Double(RFC3339.nanoseconds($0.timestamp) ?? 0) }
        let ends = zip(spans, startTimes).map { span, start in start + (span.durationMs ?? 0) * 1_000_000 }
        let origin = startTimes.min() ?? 0
        let total = max((ends.max() ?? origin) - origin, 1)
        var lines: [String] = []
        let title =
            "trace \(trace.traceId)  \(spans.count) spans  " + String(format: "%.2f ms", summary.durationMs) + "  errors \(summary.errorCount)"
            + (summary.replayOf.map { "  replay of \($0)" } ?? "")
        lines.append(title)
        lines.append(String(repeating: "─", count: min(title.count + 10, 160)))
        // Depth by parent span id. A parent may come after its child in time order (same
        // start): depth from the whole trace.
        var depthOf: [String: Int] = [:]
        var parentOf: [String: String] = [:]
        let ids = Set(spans.compactMap(\.spanId))
        for span in spans {
            if let id = span.spanId, let parent = span.parentSpanId { parentOf[id] = parent }
        }
        func depth(of id: String?, seen: Int = 0) -> Int {
            guard let id, seen < 16, let parent = parentOf[id], ids.contains(parent)
            else { return 0 }
            if let known = depthOf[id] { return known }
            let value = depth(of: parent, seen: seen + 1) + 1
            depthOf[id] = value
            return value
        }
        for (index, span) in spans.enumerated() {
            let depth = span.spanId.map { depth(of: $0) } ?? (span.parentSpanId.map { depth(of: $0) + 1 } ?? 0)
            let from = Int(min(max((startTimes[index] - origin) / total * Double(width), 0), Double(width)))
            let length = Int(min(max((ends[index] - startTimes[index]) / total * Double(width), 1), Double(width)))
            let bar = String(repeating: " ", count: min(from, width - 1)) + String(repeating: "█", count: min(length, width - min(from, width - 1)))
            let padded = bar + String(repeating: " ", count: max(0, width - bar.count))
            let label = String(repeating: "  ", count: min(depth, 8)) + "\(span.source) \(span.operation)"
            let duration = span.durationMs.map { String(format: "%.2f ms", $0) } ?? ""
            let offset = String(format: "+%.2f ms", (startTimes[index] - origin) / 1e6)
            var row = "│\(padded)│ \(SpanLine.pad(label, 40)) \(SpanLine.pad(span.stage, 18)) \(SpanLine.pad(duration, 11)) \(offset)"
            if criticalPath != nil {
                if let time = onPath[span.seq] {
                    row = "◆ " + row + String(format: "  (%.2f ms on the critical path)", time)
                } else {
                    row = "  " + row
                }
            }
            lines.append(colour ? "\u{1B}[\(span.isError ? "31" : SpanLine.stageColour(span.stage))m\(row)\u{1B}[0m" : row)
        }
        if let criticalPath {
            lines.append(String(repeating: "─", count: min(title.count + 10, 160)))
            let total = max(criticalPath.durationMs, 1e-9)
            var parts = criticalPath.bySource.sorted { ($1.value, $0.key) < ($0.value, $1.key) }.map { source, time in
                "\(source) " + String(format: "%.2f ms (%.0f%%)", time, time / total * 100)
            }
            if criticalPath.gapMs > 0 {
                parts.append(String(format: "no span %.2f ms (%.0f%%)", criticalPath.gapMs, criticalPath.gapMs / total * 100))
            }
            lines.append("critical path: \(criticalPath.path.count) spans; by source: " + parts.joined(separator: ", "))
        }
        return lines.joined(separator: "\n")
    }
}

extension TraceCommand {
    /// `custody trace graph`: the custody graph of a running server as two tables.
    struct Graph: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show who handed work to whom: sources and the hand-offs between them over a window.",
            discussion: """
                Reads GET /api/graph. The window is whole minutes of span time, by default the last hour; a \
                hand-off is a span whose parent span is of another source, with the child's duration as its \
                latency (docs/analysis.md, "The custody graph").
                """
        )

        @Option(help: "The server (default $CUSTODY_SERVER, else http://127.0.0.1:8787).") var server: String?
        @Option(help: "The window's start, RFC 3339 (default: an hour before --until).") var since: String?
        @Option(help: "The window's end, RFC 3339 (default: now).") var until: String?
        @Option(help: "Only the hand-offs into and out of this source.") var source: String?

        func run() async throws {
            let graph: GraphDocument
            do {
                graph = try await CustodyClient.command(server: server).graph(since: since, until: until, source: source)
            } catch {
                printError("custody: \(error.message)")
                throw ExitCode(1)
            }
            print(Self.render(graph))
        }

        static func render(_ graph: GraphDocument) -> String {
            func milliseconds(_ value: Double?) -> String { value.map { String(format: "%.1f", $0) } ?? "-" }
            func row(_ cells: [String], _ widths: [Int]) -> String {
                zip(cells, widths).enumerated().map { index, pair in
                    index == 0
                        ? pair.0.padding(toLength: pair.1, withPad: " ", startingAt: 0)
                        : String(repeating: " ", count: max(0, pair.1 - pair.0.count)) + pair.0
                }.joined(separator: "  ")
            }
            var lines = ["Custody graph from \(graph.since) to \(graph.until)", ""]
            let nameWidth = max(7, graph.nodes.map(\.source.count).max() ?? 0)
            let widths = [nameWidth, 9, 7, 9, 9]
            lines.append(row(["SOURCE", "SPANS", "ERRORS", "P50 MS", "P99 MS"], widths))
            for node in graph.nodes {
                lines.append(row([node.source, String(node.spans), String(node.errors), milliseconds(node.p50Ms), milliseconds(node.p99Ms)], widths))
            }
            lines.append("")
            let handOffs = graph.edges.map { "\($0.from) → \($0.to)" }
            let edgeWidths = [max(9, handOffs.map(\.count).max() ?? 0), 9, 7, 9, 9]
            lines.append(row(["HAND-OFF", "CALLS", "ERRORS", "P50 MS", "P99 MS"], edgeWidths))
            for (name, edge) in zip(handOffs, graph.edges) {
                lines.append(row([name, String(edge.calls), String(edge.errors), milliseconds(edge.p50Ms), milliseconds(edge.p99Ms)], edgeWidths))
            }
            if graph.edges.isEmpty { lines.append("(no hand-offs in this window)") }
            return lines.joined(separator: "\n")
        }
    }
}
