import CompressNIO
import CustodyCore
import CustodyLogTesting
import CustodyRPC
import CustodyServer
import CustodyServerTesting
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import HTTPTypes
import HummingbirdTesting
import NIOCore
import SwiftProtobuf
import Testing

/// `/metrics` keeps Prometheus' conventions (counters end in `_total`, fsync latency is a
/// histogram, `custody_build_info`; `promtool check metrics` finds nothing), and the ingest
/// counters count what every ingest route took.
@Suite struct MetricsTests {
    /// The value of the sample `name` (no labels) in Prometheus text, or nil.
    static func sample(_ name: String, in text: String) -> Double? {
        for line in text.split(separator: "\n") where line.hasPrefix(name + " ") {
            return Double(line.dropFirst(name.count + 1))
        }
        return nil
    }

    @Test func ingestCountersCountEveryRouteAndCountersAreCounters() async throws {
        try await ServerFixture.run(.router) { _, client in
            let json = #"[{"source":"metrics-a","operation":"one"},{"source":"metrics-a","operation":"two"}]"#
            let logged = try await client.call(.post, "/api/logs", json: json)
            #expect(logged.status == .ok)
            let otlp = OTLPRouteTests.export(spanIds: [1, 2, 3])
            let exported = try await client.execute(
                uri: "/v1/traces",
                method: .post,
                headers: [.contentType: "application/x-protobuf"],
                body: ByteBuffer(bytes: otlp)
            ) { $0.status }
            #expect(exported == .ok)
            var plain = ByteBuffer(bytes: OTLPRouteTests.export(spanIds: [4]))
            let zipped = try plain.compress(with: .gzip)
            let zippedStatus = try await OTLPRouteTests.postGzip(client, zipped).status
            #expect(zippedStatus == .ok)

            let text = try await client.execute(uri: "/metrics", method: .get) { String(buffer: $0.body) }
            #expect(Self.sample("custody_ingest_bytes_total", in: text) == Double(json.utf8.count + otlp.count + zipped.readableBytes))
            #expect(Self.sample("custody_ingest_events_total", in: text) == 6)
            for counter in [
                "custody_log_fsyncs_total", "custody_log_appends_failed_total", "custody_ingest_refused_total", "custody_live_dropped_total",
                "custody_live_delivered_total",
            ] {
                #expect(text.contains("# TYPE \(counter) counter"), "\(counter) is not a counter")
            }
            #expect((Self.sample("custody_log_fsyncs_total", in: text) ?? 0) >= 3)
            for gone in ["custody_log_fsyncs ", "custody_ingest_refused ", "custody_live_dropped ", "custody_log_fsync_seconds "] {
                #expect(!text.contains("\n" + gone), "\(gone)is still a gauge")
            }
            #expect(text.contains("# TYPE custody_log_fsync_duration_seconds histogram"))
            #expect((Self.sample("custody_log_fsync_duration_seconds_count", in: text) ?? 0) >= 3)
            #expect(text.contains("custody_build_info{"))

            // A second scrape: counters never go back.
            _ = try await client.call(.post, "/api/logs", json: #"{"source":"metrics-b"}"#)
            let again = try await client.execute(uri: "/metrics", method: .get) { String(buffer: $0.body) }
            #expect(Self.sample("custody_log_fsyncs_total", in: again)! > Self.sample("custody_log_fsyncs_total", in: text)!)

            try await Self.expectPromtoolFindsNothing(again)
        }
    }

    /// gRPC `recordLog` counts too: its request message's bytes.
    @Test func ingestOverGRPCIsCounted() async throws {
        try await RPCTests.withRPC { _, client, http in
            var request = Custody_V1_RecordLogRequest()
            request.entries = (0..<4).map { index in
                var entry = Custody_V1_LogEntry()
                entry.traceID = "metrics-rpc"
                entry.operation = "op-\(index)"
                entry.detailsJson = #"{"n":\#(index)}"#
                return entry
            }
            let reply = try await Custody_V1_LogOps.Client(wrapping: client).recordLog(request)
            #expect(reply.accepted == 4)
            let text = try await http.execute(uri: "/metrics", method: .get) { String(buffer: $0.body) }
            let bytes: [UInt8] = try request.serializedBytes()
            #expect(Self.sample("custody_ingest_bytes_total", in: text) == Double(bytes.count))
            #expect(Self.sample("custody_ingest_events_total", in: text) == 4)
        }
    }

    /// promtool (Debian's prometheus, installed by make deps) finds nothing to complain of in `text`.
    static func expectPromtoolFindsNothing(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let promtool = try #require(
            ["/usr/bin/promtool", "/usr/local/bin/promtool"].first { FileManager.default.isExecutableFile(atPath: $0) },
            "promtool is missing: make deps installs Debian's prometheus"
        )
        let input = FileManager.default.temporaryDirectory.appendingPathComponent("metrics-\(UUID().uuidString).txt")
        let output = input.path + ".out"
        defer {
            try? FileManager.default.removeItem(at: input)
            try? FileManager.default.removeItem(atPath: output)
        }
        try text.write(to: input, atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: promtool)
        process.arguments = ["check", "metrics"]
        process.standardInput = try FileHandle(forReadingFrom: input)
        let out = try ChildProcess.outputFile(output)
        process.standardOutput = out
        process.standardError = out
        try process.run()
        try await ChildProcess.exit(process)
        let complaints = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        #expect(process.terminationStatus == 0 && complaints.isEmpty, "promtool: \(complaints)", sourceLocation: sourceLocation)
    }

    /// The value of the sample `name{labels}` in Prometheus text, or nil.
    static func sample(_ name: String, _ labels: String, in text: String) -> Double? {
        sample(name + "{" + labels + "}", in: text)
    }

    /// RED span metrics (docs/api.md, "Trace analysis"): per (source, operation) counts, errors
    /// and a duration histogram matching the spans sent, label values escaped, operations past the
    /// cap in one `__other__` series per source; promtool takes it.
    @Test func spanMetricsCountTheSpansSentWithCardinalityCapped() async throws {
        try await ServerFixture.run(.router) { runtime, client in
            var entries: [String] = []
            for index in 0..<12 {
                let stage = index < 2 ? "error" : "processing"
                entries.append(#"{"trace_id":"red-1","source":"red-a","operation":"build","stage":"\#(stage)","duration_ms":5}"#)
            }
            for _ in 0..<3 { entries.append(#"{"trace_id":"red-1","source":"red-a","operation":"fetch","duration_ms":2000}"#) }
            entries.append(#"{"trace_id":"red-2","source":"red_b","operation":"we\"ird\\op","details":{"error":"boom"}}"#)
            let limit = runtime.spanMetrics.limits.operationsPerSource
            for index in 0..<(limit + 5) { entries.append(#"{"trace_id":"red-3","source":"red-many","operation":"op-\#(index)","duration_ms":1}"#) }
            let logged = try await client.call(.post, "/api/logs", json: "[" + entries.joined(separator: ",") + "]")
            #expect(logged.status == .ok, "\(logged.errorMessage ?? "")")

            // The metrics follow the log: wait until they have read it all.
            var text = ""
            for _ in 0..<200 {
                text = try await client.execute(uri: "/metrics", method: .get) { String(buffer: $0.body) }
                if Self.sample("custody_spans_total", #"source="red-many",operation="__other__""#, in: text) == 5 { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            let build = #"source="red-a",operation="build""#
            #expect(Self.sample("custody_spans_total", build, in: text) == 12)
            #expect(Self.sample("custody_span_errors_total", build, in: text) == 2)
            #expect(Self.sample("custody_span_duration_seconds_bucket", build + #",le="0.001""#, in: text) == 0)
            #expect(Self.sample("custody_span_duration_seconds_bucket", build + #",le="0.005""#, in: text) == 12)
            #expect(Self.sample("custody_span_duration_seconds_count", build, in: text) == 12)
            #expect(abs((Self.sample("custody_span_duration_seconds_sum", build, in: text) ?? 0) - 0.06) < 1e-9)
            let fetch = #"source="red-a",operation="fetch""#
            #expect(Self.sample("custody_span_duration_seconds_bucket", fetch + #",le="1.0""#, in: text) == 0)
            #expect(Self.sample("custody_span_duration_seconds_bucket", fetch + #",le="2.5""#, in: text) == 3)
            #expect(Self.sample("custody_span_errors_total", fetch, in: text) == 0)
            let weird = #"source="red_b",operation="we\"ird\\op""#
            #expect(Self.sample("custody_spans_total", weird, in: text) == 1)
            #expect(Self.sample("custody_span_errors_total", weird, in: text) == 1)
            #expect(Self.sample("custody_span_duration_seconds_count", weird, in: text) == 0)
            let many = text.split(separator: "\n").filter { $0.hasPrefix(#"custody_spans_total{source="red-many""#) }
            #expect(many.count == limit + 1, "\(many.count) series of red-many")
            #expect(Self.sample("custody_spans_total", #"source="red-many",operation="__other__""#, in: text) == 5)
            try await Self.expectPromtoolFindsNothing(text)
        }
    }
}
