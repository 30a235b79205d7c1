import CustodyLog
import NIOCore

/// Realistic sample records (span-like JSON) for benchmarks, `custody bench` and tests. The log
/// itself never uses this: it only gives measurements data that compresses like real traffic.
public enum SamplePayloads {
    static let sources = ["agent-factory", "data-factory", "services-factory", "ui-factory", "ops-factory", "orchestrator"]
    static let stages = ["request_received", "processing", "outbound_call", "response_sent", "before_rpc", "after_rpc", "error"]
    static let operations = [
        "createAgent", "POST /api/tasks", "runPipeline", "deployService", "renderPage", "submitFollowup", "GET /api/orders/{id}",
    ]

    /// The time of span `n`: 2026-11-25T06:00:00Z plus `n` milliseconds (wrapping after 18
    /// hours). Like a sender's clock, it advances with the spans it stamps: spans are sent as
    /// they happen, give or take the jitter between senders (the callers' appenders, each with its
    /// own `n`).
    static func timestamp(_ n: Int) -> String {
        let milliseconds = n % (18 * 3_600_000)
        let hour = 6 + milliseconds / 3_600_000
        let minute = milliseconds / 60_000 % 60
        let second = milliseconds / 1000 % 60
        func two(_ value: Int) -> String { value < 10 ? "0\(value)" : "\(value)" }
        let fraction = milliseconds % 1000
        let three = fraction < 10 ? "00\(fraction)" : fraction < 100 ? "0\(fraction)" : "\(fraction)"
        return "2026-11-25T\(two(hour)):\(two(minute)):\(two(second)).\(three)Z"
    }

    /// A span-like JSON document of about `size` bytes (at least ~200), varying with `n`.
    /// `spansPerTrace` consecutive values of `n` share a trace id (with the same `traceSalt`), as
    /// the spans of one request do; 1 gives every span its own trace. Within a trace, every span
    /// after the first is a child of the first (`parent_span_id`), mostly of another source: the
    /// hand-offs the custody graph counts.
    public static func span(
        _ n: Int,
        size: Int = 256,
        spansPerTrace: Int = 1,
        traceSalt: UInt64 = 0,
        random: inout some RandomNumberGenerator
    ) -> ByteBuffer {
        let trace: String
        if spansPerTrace > 1 {
            var mixer = SplitMix64(seed: traceSalt &+ UInt64(n / spansPerTrace))
            trace = String(mixer.next() & 0xFFFF_FFFF_FFFF, radix: 16)
        } else {
            trace = String(UInt64.random(in: 0...UInt64.max, using: &random) & 0xFFFF_FFFF_FFFF, radix: 16)
        }
        let span: String
        var parent = ""
        if spansPerTrace > 1 {
            func id(_ n: Int) -> String {
                var mixer = SplitMix64(seed: traceSalt ^ (UInt64(n) &* 0x9E37_79B9_7F4A_7C15))
                return String(mixer.next(), radix: 16)
            }
            span = id(n)
            if n % spansPerTrace != 0 { parent = #""parent_span_id":"\#(id(n - n % spansPerTrace))","# }
        } else {
            span = String(UInt64.random(in: 0...UInt64.max, using: &random), radix: 16)
        }
        let duration = Double(Int.random(in: 1...250_000, using: &random)) / 100
        var json =
            #"{"type":"span","trace_id":"\#(trace)","span_id":"\#(span)",\#(parent)"source":"\#(sources[n % sources.count])","#
            + #""stage":"\#(stages[(n / 3) % stages.count])","operation":"\#(operations[(n / 7) % operations.count])","#
            + #""task_uuid":null,"duration_ms":\#(duration),"timestamp":"\#(timestamp(n))","details":{"ok":true"#
        if json.utf8.count + 20 < size {
            json += #","note":""#
            while json.utf8.count + 3 < size {
                json += ["order ", "retry ", "ok ", "queued ", "shipped ", "\(n % 97) "][Int.random(in: 0..<6, using: &random)]
            }
            json += "\""
        }
        json += "}}"
        return ByteBuffer(string: json)
    }
}
