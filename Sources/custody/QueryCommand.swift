import ArgumentParser
import CustodyClient
import CustodyCore
import Foundation

/// `custody query '<query>'`: a query of the query language against a running server — the
/// matching traces as a table, or a metrics query's series as terminal charts.
struct QueryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "query",
        abstract: "Find traces, or draw time series, with the query language.",
        discussion: """
            `{ source = "data-factory" && duration > 100ms }` lists the traces with such a span, newest first \
            (GET /api/traces?q=); a query ending in a metric function — `{ status = error } | rate() by (source)` — \
            draws its series (GET /api/metrics/query). The query is checked here first: one that does not parse \
            is shown with a mark under the column of the error. The language is in docs/analysis.md.
            """
    )

    @Argument(help: "The query.") var query: String
    @Option(help: "The server (default $CUSTODY_SERVER, else http://127.0.0.1:8787).") var server: String?
    @Option(help: "The window's start, RFC 3339 (traces: needed when the query names no source, operation, stage or trace_id).")
    var since: String?
    @Option(help: "The window's end, RFC 3339.") var until: String?
    @Option(help: "Traces: how many.") var limit = 20
    @Option(help: "Metrics: the step, seconds or 30s, 1m (default: a sixtieth of the window).") var step: String?
    @Flag(help: "Print the server's answer as JSON.") var json = false

    func run() async throws {
        let parsed: TraceQuery
        do {
            parsed = try TraceQuery(parsing: query)
        } catch {
            printError(
                "custody: the query does not parse:\n  \(query)\n  \(String(repeating: " ", count: max(0, error.column - 1)))^ \(error.message)"
            )
            throw ExitCode(1)
        }
        let client = CustodyClient.command(server: server)
        do {
            if parsed.metric != nil {
                let metrics = try await client.queryMetrics(query, since: since, until: until, step: step)
                print(json ? Self.json(metrics) : Self.render(metrics))
            } else {
                let page = try await client.queryTraces(query, since: since, until: until, limit: limit)
                print(json ? Self.json(page) : Self.render(page))
            }
        } catch {
            printError("custody: \(error.message)")
            throw ExitCode(1)
        }
    }

    static func render(_ page: TracePage) -> String {
        guard !page.traces.isEmpty else { return "no traces match" }
        var lines = ["TRACE                             START                     DURATION  SPANS  ERRORS  ROOT"]
        for trace in page.traces {
            lines.append(
                trace.traceId.padding(toLength: 33, withPad: " ", startingAt: 0) + " "
                    + trace.start.padding(toLength: 25, withPad: " ", startingAt: 0)
                    + String(format: "%9.1fms", trace.durationMs) + String(format: "%7d", trace.spanCount) + String(format: "%8d", trace.errorCount)
                    + "  " + trace.rootOperation
            )
        }
        if page.nextCursor != nil { lines.append("(more: --limit, or the API's cursor)") }
        return lines.joined(separator: "\n")
    }

    /// One line per series: its labels, a bar per step (▁ to █, scaled to the series' maximum),
    /// and its last, minimum and maximum values.
    static func render(_ metrics: MetricsDocument) -> String {
        guard !metrics.series.isEmpty else { return "no spans match in \(metrics.since) – \(metrics.until)" }
        let bars = Array("▁▂▃▄▅▆▇█")
        var lines = ["\(metrics.since) – \(metrics.until), step \(metrics.stepSeconds) s"]
        let names = metrics.series.map { series in
            series.labels.isEmpty
                ? "{}" : "{" + series.labels.sorted { $0.key < $1.key }.map { "\($0.key)=\"\($0.value)\"" }.joined(separator: ", ") + "}"
        }
        let width = names.map(\.count).max() ?? 0
        for (name, series) in zip(names, metrics.series) {
            let values = series.points.compactMap { $0.count == 2 ? $0[1] : nil }
            let top = values.max() ?? 0
            let chart = String(values.map { top > 0 ? bars[min(bars.count - 1, Int($0 / top * Double(bars.count - 1) + 0.5))] : bars[0] })
            let summary = String(format: "last %.3g  min %.3g  max %.3g", values.last ?? 0, values.min() ?? 0, top)
            lines.append(name.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + chart + "  " + summary)
        }
        return lines.joined(separator: "\n")
    }

    static func json(_ page: TracePage) -> String {
        let traces = page.traces.map { trace -> [String: Any] in
            [
                "trace_id": trace.traceId, "root_operation": trace.rootOperation, "start": trace.start, "end": trace.end,
                "duration_ms": trace.durationMs, "span_count": trace.spanCount, "error_count": trace.errorCount, "sources": trace.sources,
            ]
        }
        return text(["traces": traces, "next_cursor": page.nextCursor as Any])
    }

    static func json(_ metrics: MetricsDocument) -> String {
        text([
            "since": metrics.since, "until": metrics.until, "step_seconds": metrics.stepSeconds,
            "series": metrics.series.map { ["labels": $0.labels, "points": $0.points] as [String: Any] },
        ])
    }

    private static func text(_ object: [String: Any]) -> String {
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }
}
