import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// `custody trace show`: a trace from a running server as a waterfall in the terminal.
struct TraceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trace",
        abstract: "Look at traces on a running server.",
        subcommands: [Show.self]
    )

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a trace as a waterfall: one row per span, bars on a shared time axis.")

        @Argument(help: "The trace id.") var traceId: String
        @Option(help: "The server (default $CUSTODY_SERVER, else http://127.0.0.1:8787).") var server: String?
        @Option(help: "Columns for the bars.") var width = 48

        func run() async throws {
            let base = ServerURL.resolve(server)
            let path = traceId.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? traceId
            let document: [String: Any]
            do {
                let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: "\(base)/api/traces/\(path)"), timeout: .seconds(30))
                let body = try await response.body.collect(upTo: 64 << 20)
                let json = try JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any] ?? [:]
                guard json["ok"] as? Bool == true else {
                    let message = (json["error"] as? [String: Any])?["message"] as? String ?? "the server answered \(response.status.code)"
                    printError("custody: \(message)")
                    throw ExitCode(1)
                }
                document = json["data"] as? [String: Any] ?? [:]
            } catch let error as ExitCode {
                throw error
            } catch {
                printError("custody: cannot read trace \(traceId) from \(base): \(error)")
                throw ExitCode(1)
            }
            print(Waterfall.render(document, width: max(width, 10), colour: ProcessEnvironment.standardOutputIsTerminal))
        }
    }
}

/// A trace as text: a header, then one row per span, indented under its parent, with a bar
/// placed on the trace's time axis.
enum Waterfall {
    static func render(_ trace: [String: Any], width: Int, colour: Bool) -> String {
        let spans = trace["spans"] as? [[String: Any]] ?? []
        let summary = trace["summary"] as? [String: Any] ?? [:]
        let starts = spans.map { nanoseconds($0["timestamp"] as? String) }
        // In Double: a client's timestamps and durations may be anywhere in range.
        let startTimes = starts.map { Double($0) }
        let ends = zip(spans, startTimes).map { span, start in start + ((span["duration_ms"] as? Double) ?? 0) * 1_000_000 }
        let origin = startTimes.min() ?? 0
        let total = max((ends.max() ?? origin) - origin, 1)
        // Depth by parent span id.
        var depthOf: [String: Int] = [:]
        var lines: [String] = []
        let title =
            "trace \(trace["trace_id"] as? String ?? "?")  \(spans.count) spans  "
            + String(format: "%.2f ms", summary["duration_ms"] as? Double ?? 0) + "  errors \(summary["error_count"] as? Int ?? 0)"
            + ((summary["replay_of"] as? String).map { "  replay of \($0)" } ?? "")
        lines.append(title)
        lines.append(String(repeating: "─", count: min(title.count + 10, 160)))
        // A parent may come after its child in time order (same start): depth from the whole trace.
        var parentOf: [String: String] = [:]
        let ids = Set(spans.compactMap { $0["span_id"] as? String })
        for span in spans {
            if let id = span["span_id"] as? String, let parent = span["parent_span_id"] as? String { parentOf[id] = parent }
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
            let depth =
                (span["span_id"] as? String).map { depth(of: $0) }
                ?? ((span["parent_span_id"] as? String).map { depth(of: $0) + 1 } ?? 0)
            let from = Int(min(max((startTimes[index] - origin) / total * Double(width), 0), Double(width)))
            let length = Int(min(max((ends[index] - startTimes[index]) / total * Double(width), 1), Double(width)))
            let bar = String(repeating: " ", count: min(from, width - 1)) + String(repeating: "█", count: min(length, width - min(from, width - 1)))
            let padded = bar + String(repeating: " ", count: max(0, width - bar.count))
            let label = String(repeating: "  ", count: min(depth, 8)) + "\(span["source"] as? String ?? "-") \(span["operation"] as? String ?? "-")"
            let stage = span["stage"] as? String ?? "-"
            let duration = (span["duration_ms"] as? Double).map { String(format: "%.2f ms", $0) } ?? ""
            let offset = String(format: "+%.2f ms", (startTimes[index] - origin) / 1e6)
            let isError = stage == "error" || stage == "replay_error" || (span["details"] as? [String: Any])?["error"] != nil
            let row = "│\(padded)│ \(SpanLine.pad(label, 40)) \(SpanLine.pad(stage, 18)) \(SpanLine.pad(duration, 11)) \(offset)"
            lines.append(colour ? "\u{1B}[\(isError ? "31" : SpanLine.stageColour(stage))m\(row)\u{1B}[0m" : row)
        }
        return lines.joined(separator: "\n")
    }

    /// RFC 3339 to nanoseconds since the epoch (0 when absent or unreadable).
    static func nanoseconds(_ text: String?) -> Int64 {
        guard let text else { return 0 }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let fraction =
            text.firstIndex(of: ".").map { dot -> Int64 in
                let digits = text[text.index(after: dot)...].prefix { $0.isNumber }
                return Int64((digits + String(repeating: "0", count: max(0, 9 - digits.count))).prefix(9)) ?? 0
            } ?? 0
        let whole =
            text.firstIndex(of: ".").map { dot in
                String(text[..<dot]) + String(text[text.index(after: dot)...].drop { $0.isNumber })
            } ?? text
        formatter.formatOptions = [.withInternetDateTime]
        guard let date = formatter.date(from: whole) else { return 0 }
        return Int64(date.timeIntervalSince1970) * 1_000_000_000 + fraction
    }
}
