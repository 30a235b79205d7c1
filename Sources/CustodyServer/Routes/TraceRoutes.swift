import CustodyCore
import Hummingbird
import NIOCore

/// Reads of traces (docs/api.md "Traces"): the active-span cache, one trace (JSON, or a CSV/JSON
/// download), its critical path, search, compare, and the replays list. Reads of traces are not traced.
struct TraceRoutes {
    let runtime: CoreRuntime

    func register(on router: Router<CustodyRequestContext>) {
        let traces = runtime.traces
        router.get("/api/traces/active") { request, _ in
            let active = try await traces.active(
                source: request.text("source"),
                limit: try QueryValues.integer(request.query("limit"), "limit") ?? 100
            )
            return APIEnvelope.ok(.object(["spans": .array(active.spans.map(\.jsonValue)), "traces": .array(active.traces.map(\.jsonValue))]))
        }
        router.get("/api/traces/{trace_id}") { request, context in
            let traceId = try context.pathValue("trace_id")
            let format = request.query("format")
            guard format == nil || format == "json" || format == "csv" else {
                throw CoreError.invalidArgument("format", "must be csv or json")
            }
            // The request is whole; a trace of many spans may take long to read and write.
            context.allowSlowAnswer()
            let trace = try await traces.getTrace(traceId)
            // {"spans": [...], "summary": {...}, "trace_id": "..."}, the spans written directly.
            func document() -> ByteBuffer {
                var buffer = ByteBuffer()
                buffer.reserveCapacity(256 * trace.spans.count + 512)
                buffer.writeStaticString("{\"spans\":")
                SpanRecord.writeArray(trace.spans, into: &buffer)
                buffer.writeStaticString(",\"summary\":")
                trace.summary.jsonValue.write(into: &buffer)
                buffer.writeStaticString(",\"trace_id\":")
                JSONValue.writeString(traceId, into: &buffer)
                if let retention = trace.retention {
                    buffer.writeStaticString(",\"retention\":")
                    retention.jsonValue.write(into: &buffer)
                }
                buffer.writeStaticString("}")
                return buffer
            }
            switch format {
            case nil:
                return APIEnvelope.ok(raw: document())
            case "json":
                return Self.download(document(), name: "\(traceId).json", type: "application/json")
            case "csv":
                return Self.download(TraceCSV.encode(trace.spans), name: "\(traceId).csv", type: "text/csv; charset=utf-8")
            default:
                throw CoreError.invalidArgument("format", "must be csv or json")
            }
        }
        router.get("/api/traces") { request, _ in
            func text(_ name: Substring) -> String? { request.text(name) }
            func raw(_ name: Substring) -> String? { request.query(name) }
            var search = TraceSearch()
            search.source = text("source")
            search.operation = text("operation")
            search.stage = text("stage")
            search.errorsOnly = try QueryValues.boolean(raw("error"), "error") ?? false
            search.minDurationMs = try QueryValues.number(raw("min_duration_ms"), "min_duration_ms")
            search.since = try QueryValues.instant(raw("since"), "since")
            search.until = try QueryValues.instant(raw("until"), "until")
            search.query = text("q")
            search.limit = try QueryValues.integer(raw("limit"), "limit") ?? 50
            search.cursor = text("cursor")
            // A query of the query language starts with a brace; other text is a substring.
            let isQuery = search.query?.first { !$0.isWhitespace } == "{"
            let page = try await isQuery ? traces.queryTraces(search.query ?? "", search: search) : traces.searchTraces(search)
            return APIEnvelope.ok(
                .object(["traces": .array(page.traces.map(\.jsonValue)), "next_cursor": page.nextCursor.map(JSONValue.string) ?? .null])
            )
        }
        router.get("/api/traces/{trace_id}/critical-path") { _, context in
            APIEnvelope.ok(try await traces.criticalPath(try context.pathValue("trace_id")).jsonValue)
        }
        router.get("/api/metrics/query") { request, _ in
            guard let query = request.text("q") else { throw CoreError.invalidArgument("q", "is required: a metrics query") }
            let series = try await traces.queryMetrics(
                query,
                since: try QueryValues.instant(request.query("since"), "since"),
                until: try QueryValues.instant(request.query("until"), "until"),
                step: try QueryValues.step(request.query("step"), "step")
            )
            return APIEnvelope.ok(series.jsonValue)
        }
        router.get("/api/graph") { request, _ in
            let graph = try await traces.graph(
                since: try QueryValues.instant(request.query("since"), "since"),
                until: try QueryValues.instant(request.query("until"), "until"),
                source: request.text("source")
            )
            return APIEnvelope.ok(graph.jsonValue)
        }
        router.get("/api/traces/{trace_id}/compare/{other}") { _, context in
            let comparison = try await traces.compareTraces(try context.pathValue("trace_id"), try context.pathValue("other"))
            return APIEnvelope.ok(comparison.jsonValue)
        }
        router.get("/api/replays") { request, _ in
            let limit = try QueryValues.integer(request.query("limit"), "limit") ?? 50
            return APIEnvelope.ok(.object(["replays": .array(try await traces.replays(limit: limit).map(\.jsonValue))]))
        }
    }

    static func download(_ body: ByteBuffer, name: String, type: String) -> Response {
        let safeName = String(name.map { $0.isLetter || $0.isNumber || "._-:".contains($0) ? $0 : "_" })
        return Response(
            status: .ok,
            headers: [.contentType: type, .contentDisposition: "attachment; filename=\"\(safeName)\""],
            body: .init(byteBuffer: body)
        )
    }
}

/// A trace's spans as CSV (RFC 4180): one row per span, `details` as JSON text.
enum TraceCSV {
    static let columns = [
        "seq", "trace_id", "span_id", "parent_span_id", "source", "stage", "operation", "task_uuid", "duration_ms", "timestamp", "details",
    ]

    static func encode(_ spans: [SpanRecord]) -> ByteBuffer {
        var output = ByteBuffer()
        output.writeString(columns.joined(separator: ",") + "\r\n")
        for record in spans {
            let span = record.span
            let fields: [String] = [
                String(record.seq), span.traceId, span.spanId ?? "", span.parentSpanId ?? "", span.source, span.stage, span.operation,
                span.taskUUID ?? "", span.durationMs.map { String($0) } ?? "", RFC3339.format(span.timestamp), span.details?.description ?? "",
            ]
            output.writeString(fields.map(quote).joined(separator: ",") + "\r\n")
        }
        return output
    }

    static func quote(_ field: String) -> String {
        // A leading =, +, - or @ would be a formula to a spreadsheet: prefix a quote.
        var value = field
        if let first = value.first, "=+-@".contains(first), Double(value) == nil { value = "'" + value }
        guard value.contains(where: { $0 == "," || $0 == "\"" || $0 == "\r" || $0 == "\n" }) || value != field else { return value }
        var quoted = "\""
        for character in value {
            if character == "\"" { quoted.append("\"") }
            quoted.append(character)
        }
        return quoted + "\""
    }
}
