import CustodyLog
import NIOCore

/// A span as the API returns it: the span and the seq of its event.
public struct SpanRecord: Sendable, Hashable {
    public var seq: UInt64
    public var span: Span

    public init(seq: UInt64, span: Span) {
        self.seq = seq
        self.span = span
    }

    /// docs/api.md's span entry plus `seq`.
    public var jsonValue: JSONValue {
        guard case .object(var object) = EventBody.span(span).jsonValue else { return .null }
        object["seq"] = .integer(Int64(bitPattern: seq))
        return .object(object)
    }

    /// The same entry as JSON text written straight into `buffer`, keys in the same (sorted)
    /// order as ``jsonValue``'s, with `details` copied as stored — it was checked as a JSON
    /// object when it was taken — instead of parsed and re-encoded: reading a 1,000-span trace
    /// spent half its time re-parsing details (`perf`, docs/benchmarks.md P6).
    public func write(into buffer: inout ByteBuffer) {
        func field(_ name: StaticString, first: Bool = false) {
            if !first { buffer.writeInteger(UInt8(ascii: ",")) }
            buffer.writeInteger(UInt8(ascii: "\""))
            buffer.writeStaticString(name)
            buffer.writeStaticString("\":")
        }
        func optional(_ value: String?) {
            if let value { JSONValue.writeString(value, into: &buffer) } else { buffer.writeStaticString("null") }
        }
        buffer.writeInteger(UInt8(ascii: "{"))
        field("details", first: true)
        if var details = span.details?.bytes, details.readableBytes > 0 {
            buffer.writeBuffer(&details)
        } else {
            buffer.writeStaticString("null")
        }
        field("duration_ms")
        if let duration = span.durationMs { JSONValue.number(duration).write(into: &buffer) } else { buffer.writeStaticString("null") }
        field("operation")
        JSONValue.writeString(span.operation, into: &buffer)
        field("parent_span_id")
        optional(span.parentSpanId)
        field("seq")
        buffer.writeString(String(seq))
        field("source")
        JSONValue.writeString(span.source, into: &buffer)
        field("span_id")
        optional(span.spanId)
        field("stage")
        JSONValue.writeString(span.stage, into: &buffer)
        field("task_uuid")
        optional(span.taskUUID)
        field("timestamp")
        JSONValue.writeString(RFC3339.format(span.timestamp), into: &buffer)
        field("trace_id")
        JSONValue.writeString(span.traceId, into: &buffer)
        buffer.writeInteger(UInt8(ascii: "}"))
    }

    /// A JSON array of `records`, written with ``write(into:)``.
    public static func writeArray(_ records: [SpanRecord], into buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt8(ascii: "["))
        for (index, record) in records.enumerated() {
            if index > 0 { buffer.writeInteger(UInt8(ascii: ",")) }
            record.write(into: &buffer)
        }
        buffer.writeInteger(UInt8(ascii: "]"))
    }
}

/// One row of `trace_summaries` (docs/api.md's TraceSummary).
public struct TraceSummaryRecord: Sendable, Hashable {
    public var traceId: String
    public var rootOperation: String
    public var start: Int64
    public var end: Int64
    public var spanCount: Int
    public var errorCount: Int
    public var sources: [String]
    public var replayOf: String?

    public var durationMs: Double { (Double(end) - Double(start)) / 1_000_000 }

    public var jsonValue: JSONValue {
        var object: [String: JSONValue] = [
            "trace_id": .string(traceId), "root_operation": .string(rootOperation), "start": .string(RFC3339.format(start)),
            "end": .string(RFC3339.format(end)), "duration_ms": .number(durationMs), "span_count": .integer(Int64(spanCount)),
            "error_count": .integer(Int64(errorCount)), "sources": .array(sources.map(JSONValue.string)),
        ]
        if let replayOf { object["replay_of"] = .string(replayOf) }
        return .object(object)
    }

    /// The summary of a trace of one span.
    init(_ span: Span) {
        self.init(span, isError: span.isError)
    }

    /// The summary of a trace of one span whose ``Span/isError`` is known.
    init(_ span: Span, isError: Bool) {
        traceId = span.traceId
        rootOperation = span.operation
        start = span.timestamp
        end = span.end
        spanCount = 1
        errorCount = isError ? 1 : 0
        sources = [span.source]
        replayOf = nil
    }

    /// Takes one more span of the trace (in seq order): the earliest span names the root (on a
    /// tie, the one seen first keeps it). The cache and the projection fold spans with this, so
    /// they agree.
    mutating func add(_ span: Span) {
        add(span, isError: span.isError)
    }

    /// ``add(_:)`` for a span whose ``Span/isError`` is known.
    mutating func add(_ span: Span, isError: Bool) {
        if span.timestamp < start {
            start = span.timestamp
            rootOperation = span.operation
        }
        end = max(end, span.end)
        spanCount += 1
        errorCount += isError ? 1 : 0
        if !sources.contains(span.source) { sources.append(span.source) }
    }

    /// Takes the summary of later spans of the same trace (in seq order after this one's): the
    /// same result as adding those spans one by one with ``add(_:)``.
    mutating func merge(_ later: TraceSummaryRecord) {
        if later.start < start {
            start = later.start
            rootOperation = later.rootOperation
        }
        end = max(end, later.end)
        spanCount += later.spanCount
        errorCount += later.errorCount
        for source in later.sources where !sources.contains(source) { sources.append(source) }
        if replayOf == nil { replayOf = later.replayOf }
    }

    /// `sources` as `trace_summaries.sources` stores it: a JSON array.
    var sourcesJSON: String { JSONValue.array(sources.map(JSONValue.string)).jsonText.description }

    /// A row of `trace_summaries`, its `sources` as stored (a JSON array).
    init(
        traceId: String,
        rootOperation: String,
        start: Int64,
        end: Int64,
        spanCount: Int,
        errorCount: Int,
        sourcesJSON: String,
        replayOf: String?
    ) {
        self.traceId = traceId
        self.rootOperation = rootOperation
        self.start = start
        self.end = end
        self.spanCount = spanCount
        self.errorCount = errorCount
        if case .array(let values) = JSONText(sourcesJSON).jsonValue {
            sources = values.compactMap { if case .string(let text) = $0 { text } else { nil } }
        } else {
            sources = []
        }
        self.replayOf = replayOf
    }
}

/// The filters of `GET /api/traces` (docs/api.md "Traces").
public struct TraceSearch: Sendable, Hashable {
    public var source: String?
    public var operation: String?
    public var stage: String?
    /// Only traces with an error span.
    public var errorsOnly = false
    public var minDurationMs: Double?
    /// Traces that start at or after `since` and at or before `until` (nanoseconds).
    public var since: Int64?
    public var until: Int64?
    /// A substring of the trace id, the root operation or a source.
    public var query: String?
    public var limit = 50
    public var cursor: String?

    /// ``query`` as a LIKE pattern matching the text that contains it (`\` escapes `%`, `_` and
    /// itself); nil without a query.
    var containsPattern: String? {
        guard let query, !query.isEmpty else { return nil }
        var pattern = "%"
        for character in query {
            if character == "\\" || character == "%" || character == "_" { pattern.append("\\") }
            pattern.append(character)
        }
        pattern.append("%")
        return pattern
    }

    public init() {}
}

/// Reads of traces: by id from the full history, search, the active-span cache, comparison and
/// the replays list. Reads of traces are not traced themselves (docs/api.md: no feedback loop).
public struct TraceQueries: Sendable {
    let context: CoreContext
    let cache: ActiveSpanCache

    public init(context: CoreContext, cache: ActiveSpanCache) {
        self.context = context
        self.cache = cache
    }

    /// A trace from the full history: its spans by timestamp then seq (with their `details`,
    /// which stay in the log and are read from it by seq) and its summary; `trace_not_found`.
    /// After retention: `beyond_retention` for a trace whose spans were all deleted, and for one
    /// partly deleted, what is left with `retention` saying so (the summary still describes the
    /// whole trace as it was recorded).
    public func getTrace(
        _ traceId: String
    ) async throws(CoreError) -> (spans: [SpanRecord], summary: TraceSummaryRecord, retention: TraceRetention?) {
        let traceId = try SpanInput.check(traceId, "trace_id", maximum: 128)
        try await context.awaitProjections()
        let location: TraceLocation?
        do {
            location = try await context.store.trace(traceId)
        } catch {
            throw CoreError.internal("reading trace \(traceId) failed", error)
        }
        let retired: Bool
        do {
            retired = try await context.store.isRetired(traceId: traceId)
        } catch {
            throw CoreError.internal("reading trace \(traceId) failed", error)
        }
        var retention: TraceRetention?
        if retired {
            let record = try? await context.store.retention()
            let first = record?.firstRetainedSeq ?? 0
            guard location?.seqs.isEmpty == false else {
                throw CoreError(.beyondRetention, "the spans of trace \(traceId) were deleted by retention (the log keeps seq \(first) on)")
            }
            retention = TraceRetention(firstRetainedSeq: first)
        }
        guard let found = location, !found.seqs.isEmpty else { throw CoreError(.traceNotFound, "there is no trace \(traceId)") }
        var spans = try await spans(at: found)
        spans.sort { ($0.span.timestamp, $0.seq) < ($1.span.timestamp, $1.seq) }
        return (spans, found.summary, retention)
    }

    /// The spans at a trace's seqs, read from the log (with their `details`), in seq order.
    func spans(at location: TraceLocation) async throws(CoreError) -> [SpanRecord] {
        Self.spans(at: location.seqs, in: try await events(at: location.seqs))
    }

    /// The spans among `events` at these seqs, in their order.
    static func spans(at seqs: [UInt64], in events: [UInt64: Event]) -> [SpanRecord] {
        seqs.compactMap { seq -> SpanRecord? in
            guard case .span(let span)? = events[seq]?.body else { return nil }
            return SpanRecord(seq: seq, span: span)
        }
    }

    /// The events at the given seqs, read from the log in one scattered read (each batch once).
    func events(at seqs: [UInt64]) async throws(CoreError) -> [UInt64: Event] {
        var found: [UInt64: Event] = [:]
        do {
            let records = try await context.log.read(seqs: seqs)
            found.reserveCapacity(records.count)
            for record in records {
                if let event = try? EventCodec.decode(record) { found[record.seq] = event }
            }
        } catch {
            throw CoreError.internal("reading the log failed", error)
        }
        return found
    }

    /// Traces matching `search`, newest first (by start, then trace id), `limit` at a time;
    /// `next_cursor` continues after the last one.
    public func searchTraces(_ search: TraceSearch) async throws(CoreError) -> (traces: [TraceSummaryRecord], nextCursor: String?) {
        guard (1...1000).contains(search.limit) else { throw CoreError.invalidArgument("limit", "must be 1–1000") }
        if let minimum = search.minDurationMs, !(minimum >= 0 && minimum <= SpanInput.maximumDurationMs) {
            throw CoreError.invalidArgument("min_duration_ms", "must be a number from 0 to \(Int64(SpanInput.maximumDurationMs))")
        }
        var after: TraceCursor?
        if let cursor = search.cursor {
            let parts = cursor.split(separator: "~", maxSplits: 1)
            guard parts.count == 2, let start = Int64(parts[0]), !parts[1].isEmpty else {
                throw CoreError.invalidArgument("cursor", "is not a cursor this API returned")
            }
            after = TraceCursor(start: start, traceId: String(parts[1]))
        }
        try await context.awaitProjections()
        let rows: [TraceSummaryRecord]
        do {
            rows = try await context.store.searchTraces(search, after: after, limit: search.limit + 1)
        } catch {
            throw CoreError.internal("searching traces failed", error)
        }
        let page = Array(rows.prefix(search.limit))
        let next = rows.count > search.limit ? page.last.map { "\($0.start)~\($0.traceId)" } : nil
        return (page, next)
    }

    /// The newest spans in the active-span cache (of one source when given), newest first, with
    /// the summaries of their traces as the cache sees them.
    public func active(source: String?, limit: Int) async throws(CoreError) -> (spans: [SpanRecord], traces: [TraceSummaryRecord]) {
        guard (1...10_000).contains(limit) else { throw CoreError.invalidArgument("limit", "must be 1–10000") }
        try await cache.waitUntilFollowed(await context.log.lastSeq, timeout: context.readTimeout)
        let (entries, traces) = await cache.active(source: source, limit: limit)
        return (entries.map { SpanRecord(seq: $0.seq, span: $0.span) }, traces)
    }

    /// The newest replays first.
    public func replays(limit: Int) async throws(CoreError) -> [ReplayRecord] {
        guard (1...1000).contains(limit) else { throw CoreError.invalidArgument("limit", "must be 1–1000") }
        try await context.awaitProjections()
        do {
            return try await context.store.replays(limit: limit)
        } catch {
            throw CoreError.internal("reading replays failed", error)
        }
    }
}
