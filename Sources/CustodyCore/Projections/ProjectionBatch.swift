/// One transaction's worth of projection work: events in seq order, all after the store's
/// checkpoint, and the checkpoint to move to (which may be past the last event, over records
/// that were not events). The projector builds it while the previous batch is written.
public struct ProjectionBatch: Sendable {
    public var events: [Event]
    /// The seq the checkpoint moves to.
    public var checkpointSeq: UInt64
    /// The log timestamp of the record at ``checkpointSeq``.
    public var checkpointTime: Int64
    /// The batch's spans grouped by trace.
    var grouping: SpanGrouping

    public init(_ events: [Event], checkpointSeq: UInt64, checkpointTime: Int64) {
        self.events = events
        self.checkpointSeq = checkpointSeq
        self.checkpointTime = checkpointTime
        self.grouping = SpanGrouping(events)
    }
}

extension ProjectionBatch {
    /// A batch's spans grouped by trace: what the writer needs besides the events, worked out
    /// before the transaction (the projector does it while the previous batch is written).
    struct SpanGrouping: Sendable {
        /// ``Span/isError`` of each event's span (false for other events), by index.
        var isError: [Bool]
        /// The index in `traces` of each event's span's trace (-1 for other events), by index.
        var slot: [Int32]
        var traces: [TraceInBatch]
        /// The sources, operations and stages of the batch's spans, each once, with the seqs of
        /// its first and last span: `value_batches` rows.
        var values: [(kind: String, value: String)] = []
        var firstSpanSeq: Int64 = 0
        var lastSpanSeq: Int64 = 0

        /// A trace's spans in the batch.
        struct TraceInBatch: Sendable {
            var part: TraceSummaryCache.Entry
            var seqs: [Int64]
            /// `seqs` as `trace_spans.seqs` stores them.
            var seqsJSON = ""
        }

        init(_ events: [Event]) {
            isError = Array(repeating: false, count: events.count)
            slot = Array(repeating: -1, count: events.count)
            traces = []
            var slotOfTrace: [String: Int] = [:]
            var seen: (Set<String>, Set<String>, Set<String>) = ([], [], [])
            for index in events.indices {
                guard case .span(let span) = events[index].body else { continue }
                let seq = Int64(events[index].seq)
                if firstSpanSeq == 0 { firstSpanSeq = seq }
                lastSpanSeq = seq
                let error = span.isError
                isError[index] = error
                if let existing = slotOfTrace[span.traceId] {
                    slot[index] = Int32(existing)
                    traces[existing].part.summary.add(span, isError: error)
                    traces[existing].part.lastSeq = seq
                    traces[existing].seqs.append(seq)
                } else {
                    slot[index] = Int32(traces.count)
                    slotOfTrace[span.traceId] = traces.count
                    traces.append(TraceInBatch(part: .init(id: 0, summary: TraceSummaryRecord(span, isError: error), lastSeq: seq), seqs: [seq]))
                }
                if seen.0.insert(span.source).inserted { values.append(("source", span.source)) }
                if seen.1.insert(span.operation).inserted { values.append(("operation", span.operation)) }
                if seen.2.insert(span.stage).inserted { values.append(("stage", span.stage)) }
            }
            for slot in traces.indices { traces[slot].seqsJSON = ProjectionWriter.jsonArray(traces[slot].seqs) }
        }
    }
}
