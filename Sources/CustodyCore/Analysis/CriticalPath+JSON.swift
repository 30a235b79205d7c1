extension CriticalPath {
    /// docs/api.md's critical path: times in milliseconds, offsets from the trace's start.
    public var jsonValue: JSONValue {
        func milliseconds(_ nanoseconds: Int64) -> JSONValue { .number(Double(nanoseconds) / 1_000_000) }
        let path = steps.map { step -> JSONValue in
            let span = step.record.span
            return .object([
                "span_id": span.spanId.map(JSONValue.string) ?? .null,
                "seq": .integer(Int64(bitPattern: step.record.seq)),
                "source": .string(span.source),
                "operation": .string(span.operation),
                "stage": .string(span.stage),
                "depth": .integer(Int64(step.depth)),
                "self_ms": milliseconds(step.selfNanoseconds),
                "start_offset_ms": milliseconds(span.timestamp - start),
                "sections": .array(step.sections.map { .array([milliseconds($0.lowerBound), milliseconds($0.upperBound)]) }),
            ])
        }
        var document: [String: JSONValue] = [
            "trace_id": .string(traceId),
            "duration_ms": milliseconds(durationNanoseconds),
            "path": .array(path),
            "by_source": .object(bySource.mapValues(milliseconds)),
            "gap_ms": milliseconds(gapNanoseconds),
        ]
        if let retention { document["retention"] = retention.jsonValue }
        return .object(document)
    }
}
