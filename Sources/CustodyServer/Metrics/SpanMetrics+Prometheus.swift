import CustodyCore

extension SpanMetrics {
    /// The RED span metrics in Prometheus' text format (docs/api.md, "Trace analysis"), for
    /// `/metrics`, after the registry's own families: written here because the counts are the
    /// core's (a histogram of a registry can only be fed one observation at a time).
    func writePrometheus(into bytes: inout [UInt8]) {
        let series = snapshot()
        func labels(_ series: Series, _ extra: String = "") -> String {
            "{source=\"\(Self.escaped(series.source))\",operation=\"\(Self.escaped(series.operation))\"\(extra)}"
        }
        var text = """
            # HELP custody_spans_total Spans in the log, by source and operation (operation "__other__": past the cap per source).
            # TYPE custody_spans_total counter

            """
        for item in series { text += "custody_spans_total\(labels(item)) \(item.spans)\n" }
        text += """
            # HELP custody_span_errors_total Error spans in the log (stage error or replay_error, or details.error), by source and operation.
            # TYPE custody_span_errors_total counter

            """
        for item in series { text += "custody_span_errors_total\(labels(item)) \(item.errors)\n" }
        text += """
            # HELP custody_span_duration_seconds Durations of the spans in the log that have one, by source and operation.
            # TYPE custody_span_duration_seconds histogram

            """
        for item in series {
            var cumulative: Int64 = 0
            for (index, bound) in Self.bucketBounds.enumerated() {
                cumulative += item.buckets[index]
                text += "custody_span_duration_seconds_bucket\(labels(item, ",le=\"\(bound)\"")) \(cumulative)\n"
            }
            cumulative += item.buckets[Self.bucketBounds.count]
            text += "custody_span_duration_seconds_bucket\(labels(item, ",le=\"+Inf\"")) \(cumulative)\n"
            text += "custody_span_duration_seconds_sum\(labels(item)) \(item.durationSum)\n"
            text += "custody_span_duration_seconds_count\(labels(item)) \(cumulative)\n"
        }
        bytes.append(contentsOf: text.utf8)
    }

    /// A label value as the text format writes it: `\`, `"` and line feeds escaped.
    static func escaped(_ value: String) -> String {
        var escaped = ""
        escaped.reserveCapacity(value.utf8.count)
        for character in value.unicodeScalars {
            switch character {
            case "\\": escaped += "\\\\"
            case "\"": escaped += "\\\""
            case "\n": escaped += "\\n"
            default: escaped.unicodeScalars.append(character)
            }
        }
        return escaped
    }
}
