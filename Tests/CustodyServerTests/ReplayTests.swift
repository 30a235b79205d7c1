import CustodyClient
import CustodyCore
import CustodyLog
import CustodyLogTesting
import CustodyServer
import CustodyServerTesting
import Foundation
import HTTPTypes
import HummingbirdTesting
import Testing

/// A span of a trace to record: source, operation, start (ms after the trace's start), duration.
struct PlannedSpan {
    var source: String
    var operation: String
    var offsetMs: Int
    var durationMs: Double?
    var stage = "processing"
}

/// Records `spans` as trace `traceId` through `POST /api/logs`, starting at a fixed instant.
func recordTrace(_ traceId: String, _ spans: [PlannedSpan], client: any TestClientProtocol) async throws {
    let base = Date(timeIntervalSince1970: 1_795_000_000)
    let entries = spans.map { span -> String in
        let timestamp = base.addingTimeInterval(Double(span.offsetMs) / 1000).formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
        let duration = span.durationMs.map { #","duration_ms":\#($0)"# } ?? ""
        return
            #"{"trace_id":"\#(traceId)","source":"\#(span.source)","operation":"\#(span.operation)","stage":"\#(span.stage)","timestamp":"\#(timestamp)"\#(duration),"details":{"step":"\#(span.operation)"}}"#
    }
    let response = try await client.call(.post, "/api/logs", json: "[" + entries.joined(separator: ",") + "]")
    try #require(response.status == .ok)
}

/// The spans of a trace as the API returns them.
func apiSpans(_ traceId: String, client: any TestClientProtocol) async throws -> [[String: Any]] {
    let trace = try await client.call(.get, "/api/traces/\(traceId)")
    return trace.data["spans"] as? [[String: Any]] ?? []
}

/// Nanoseconds since the epoch of an RFC 3339 timestamp the API returned.
func instant(_ span: [String: Any]) -> Double {
    guard let text = span["timestamp"] as? String, let date = try? Date(text, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true))
    else { return 0 }
    return date.timeIntervalSince1970 * 1e9
}

@Suite(.timeLimit(.minutes(2))) struct ReplayTests {
    static let plan = [
        PlannedSpan(source: "agent-factory", operation: "agent.handleOrder", offsetMs: 0, durationMs: 90, stage: "after_call"),
        PlannedSpan(source: "agent-factory", operation: "TaskOps.createTask", offsetMs: 5, durationMs: 4, stage: "after_rpc"),
        PlannedSpan(source: "orchestrator", operation: "createTask", offsetMs: 6, durationMs: 1),
        PlannedSpan(source: "data-factory", operation: "data.load", offsetMs: 20, durationMs: 30),
        PlannedSpan(source: "agent-factory", operation: "agent.generate", offsetMs: 50, durationMs: 35),
    ]

    /// A dry run: replay_start, a start and an end per original span (in the original's order,
    /// pointing at its seq), replay_complete; the replays list and the summary link the traces;
    /// the original is untouched; compare pairs every original span with its replay.
    @Test func dryRunReemitsEverySpanAndLeavesTheOriginalAlone() async throws {
        try await ServerFixture.run(.router) { _, client in
            try await recordTrace("orig-1", Self.plan, client: client)
            let before = try await apiSpans("orig-1", client: client)
            let answer = try await client.call(.post, "/api/traces/replay/orig-1", json: #"{"mode":"dry-run"}"#)
            #expect(answer.status == .ok)
            let data = answer.data
            #expect(data["from_trace"] as? String == "orig-1")
            #expect(data["mode"] as? String == "dry-run")
            #expect(data["spans"] as? Int == Self.plan.count)
            #expect(data["status"] as? String == "completed")
            #expect((data["duration_ms"] as? Double ?? -1) >= 0)
            let newTrace = try #require(data["new_trace"] as? String)
            #expect(newTrace != "orig-1")

            let replayed = try await apiSpans(newTrace, client: client)
            let stages = replayed.map { $0["stage"] as? String ?? "" }
            #expect(stages.filter { $0 == "replay_start" }.count == 1)
            #expect(stages.filter { $0 == "replay_complete" }.count == 1)
            #expect(stages.filter { $0 == "replay_span_start" }.count == Self.plan.count)
            #expect(stages.filter { $0 == "replay_span_end" }.count == Self.plan.count)
            #expect(!stages.contains("sim_replay") && !stages.contains("replay_error"))
            // Each original span, by seq, has exactly one start and one end, with its source,
            // operation and stage.
            let originalBySeq = Dictionary(uniqueKeysWithValues: before.map { ($0["seq"] as! Int, $0) })
            for stage in ["replay_span_start", "replay_span_end"] {
                let linked = replayed.filter { $0["stage"] as? String == stage }
                let seqs = linked.compactMap { ($0["details"] as? [String: Any])?["original_seq"] as? Int }
                #expect(Set(seqs) == Set(originalBySeq.keys))
                for span in linked {
                    let details = span["details"] as? [String: Any] ?? [:]
                    let original = try #require(originalBySeq[details["original_seq"] as? Int ?? -1])
                    #expect(details["from_trace"] as? String == "orig-1")
                    #expect(span["source"] as? String == original["source"] as? String)
                    #expect(span["operation"] as? String == original["operation"] as? String)
                    #expect(details["original_stage"] as? String == original["stage"] as? String)
                }
            }
            let summary = try await client.call(.get, "/api/traces/\(newTrace)").data["summary"] as? [String: Any]
            #expect(summary?["replay_of"] as? String == "orig-1")

            let after = try await apiSpans("orig-1", client: client)
            #expect(after.count == before.count)
            #expect(after.map { $0["seq"] as? Int } == before.map { $0["seq"] as? Int })

            let replays = try await client.call(.get, "/api/replays?limit=10").data["replays"] as? [[String: Any]] ?? []
            let entry = try #require(replays.first { $0["new_trace"] as? String == newTrace })
            #expect(entry["from_trace"] as? String == "orig-1")
            #expect(entry["status"] as? String == "completed")
            #expect(entry["mode"] as? String == "dry-run")
            #expect(entry["spans"] as? Int == Self.plan.count)

            // Both directions of compare pair every original span with its replay_span_end.
            for (a, b) in [("orig-1", newTrace), (newTrace, "orig-1")] {
                let comparison = try await client.call(.get, "/api/traces/\(a)/compare/\(b)").data
                let pairs = comparison["pairs"] as? [[String: Any]] ?? []
                #expect(pairs.count == Self.plan.count)
                let originals = pairs.compactMap { ($0[a == "orig-1" ? "a" : "b"] as? [String: Any])?["seq"] as? Int }
                #expect(Set(originals) == Set(originalBySeq.keys))
                #expect((comparison[a == "orig-1" ? "only_a" : "only_b"] as? [Any])?.isEmpty == true)
            }
        }
    }

    /// An unknown trace: 404 trace_not_found, and the attempt is on record (replay_start then
    /// replay_abort, an aborted replay).
    @Test func anUnknownTraceAborts() async throws {
        try await ServerFixture.run(.router) { _, client in
            let answer = try await client.call(.post, "/api/traces/replay/nobody", json: #"{"mode":"dry-run"}"#)
            #expect(answer.status == .notFound)
            #expect(answer.errorCode == "trace_not_found")
            let replays = try await client.call(.get, "/api/replays").data["replays"] as? [[String: Any]] ?? []
            let entry = try #require(replays.first { $0["from_trace"] as? String == "nobody" })
            #expect(entry["status"] as? String == "aborted")
            let spans = try await apiSpans(try #require(entry["new_trace"] as? String), client: client)
            #expect(Set(spans.map { $0["stage"] as? String ?? "" }) == ["replay_start", "replay_abort"])
            #expect(spans.first { $0["stage"] as? String == "replay_abort" }.flatMap { $0["details"] as? [String: Any] }?["error"] != nil)
        }
    }

    /// Bad input names its field and appends nothing.
    @Test func badModeOrSpeedIs422() async throws {
        try await ServerFixture.run(.router) { runtime, client in
            try await recordTrace("orig-2", Self.plan, client: client)
            // The recording's response_sent goes in just after its answer.
            await runtime.context.responses.idle()
            let head = await runtime.log.lastSeq
            for (body, field) in [
                (#"{"mode":"fast"}"#, "mode"), (#"{"speed":-1}"#, "speed"), (#"{"speed":"2"}"#, "speed"), (#"{"speed":1e9}"#, "speed"),
            ] {
                let answer = try await client.call(.post, "/api/traces/replay/orig-2", json: body)
                #expect(answer.status == .unprocessableContent, "\(body)")
                #expect(answer.errorField == field, "\(body)")
            }
            #expect(try await client.call(.post, "/api/traces/replay/orig-2", json: "[").status == .badRequest)
            await runtime.context.responses.idle()
            #expect(await runtime.log.lastSeq == head)
            // An empty body is a dry run at full speed.
            let answer = try await client.call(.post, "/api/traces/replay/orig-2")
            #expect(answer.status == .ok && answer.data["mode"] as? String == "dry-run")
        }
    }

    /// Speed 1 keeps the original pacing (starts and durations), speed 4 a quarter of it, speed 0
    /// none. Replay spans are never early; late only by scheduling (the appends run beside the
    /// pacing, so a slow disk does not stretch it): the bounds tell speed 1 from speed 4 apart.
    @Test func speedPacesTheReplay() async throws {
        // Offsets far enough apart that a busy machine (tests run in parallel on 2 cores; a
        // sleeping task may wait for a thread) cannot blur speed 1 into speed 4.
        let plan = [
            PlannedSpan(source: "a", operation: "first", offsetMs: 0, durationMs: 400),
            PlannedSpan(source: "a", operation: "second", offsetMs: 800, durationMs: 800),
            PlannedSpan(source: "b", operation: "third", offsetMs: 2400, durationMs: 0),
        ]
        try await ServerFixture.run(.router) { _, client in
            try await recordTrace("paced", plan, client: client)
            let late = 500.0
            // Earliness is a bug and fails at once. Lateness only says the machine was busy: a
            // round with any is run again (three rounds at most); a pacing that ignores `speed`
            // is late or early in every round.
            var lateness: [String] = []
            for _ in 0..<3 {
                lateness = []
                for speed in [1.0, 4.0, 0.0] {
                    let answer = try await client.call(.post, "/api/traces/replay/paced", json: #"{"speed":\#(speed)}"#)
                    let duration = answer.data["duration_ms"] as? Double ?? -1
                    let expected = speed == 0 ? 0 : 2400 / speed
                    #expect(duration >= expected, "speed \(speed): \(duration) ms")
                    let spans = try await apiSpans(try #require(answer.data["new_trace"] as? String), client: client)
                    let starts = spans.filter { $0["stage"] as? String == "replay_span_start" }.map(instant)
                    let ends = spans.filter { $0["stage"] as? String == "replay_span_end" }
                    #expect(starts.count == 3)
                    guard starts.count == 3 else { continue }
                    // Never early (to the millisecond the API shows): each start is at least its
                    // offset after replay_start, which comes before the schedule's origin.
                    let origin = try #require(spans.first { $0["stage"] as? String == "replay_start" }.map(instant))
                    for (index, offset) in [0.0, 800, 2400].enumerated() {
                        let wanted = speed == 0 ? 0 : offset / speed
                        let sinceOrigin = (starts[index] - origin) / 1e6
                        let measured = (starts[index] - starts[0]) / 1e6
                        #expect(sinceOrigin >= wanted - 1.01, "speed \(speed) span \(index) early: \(sinceOrigin) ms")
                        if measured > wanted + late { lateness.append("speed \(speed) span \(index) started at \(measured) ms") }
                    }
                    let second = try #require(ends.first { $0["operation"] as? String == "second" })
                    let secondDuration = second["duration_ms"] as? Double ?? -1
                    let wanted = speed == 0 ? 0 : 800 / speed
                    // Never shorter than the original ÷ speed, even after a late start.
                    #expect(secondDuration >= wanted - 0.5, "speed \(speed): second lasted \(secondDuration) ms")
                    if secondDuration > wanted + late { lateness.append("speed \(speed): second lasted \(secondDuration) ms") }
                }
                if lateness.isEmpty { break }
            }
            #expect(lateness.isEmpty, "late in three rounds: \(lateness)")
        }
    }

    /// Replays of replays, and concurrent replays of one trace, are independent.
    @Test func replaysOfReplaysAndConcurrentReplays() async throws {
        try await ServerFixture.run(.router) { _, client in
            try await recordTrace("orig-3", Self.plan, client: client)
            let traces = try await withThrowingTaskGroup(of: String?.self) { group in
                for _ in 0..<4 { group.addTask { try await client.call(.post, "/api/traces/replay/orig-3").data["new_trace"] as? String } }
                return try await group.reduce(into: [String]()) { if let trace = $1 { $0.append(trace) } }
            }
            #expect(Set(traces).count == 4)
            for trace in traces {
                let spans = try await apiSpans(trace, client: client)
                #expect(spans.filter { $0["stage"] as? String == "replay_span_end" }.count == Self.plan.count)
                let linked = spans.filter { ($0["stage"] as? String ?? "").hasPrefix("replay_") }
                #expect(linked.allSatisfy { ($0["details"] as? [String: Any])?["from_trace"] as? String == "orig-3" })
            }
            // A replay of the first replay: one start/end per span of the replay.
            let first = try #require(traces.first)
            let replaySpans = try await apiSpans(first, client: client)
            let again = try await client.call(.post, "/api/traces/replay/\(first)")
            #expect(again.data["spans"] as? Int == replaySpans.count)
            let summary = try await client.call(.get, "/api/traces/\(again.data["new_trace"] as? String ?? "")").data["summary"] as? [String: Any]
            #expect(summary?["replay_of"] as? String == first)
        }
    }

    /// A replay cut short by a crash (its replay.started in the log, no replay.completed) is
    /// recorded as aborted when the data directory is opened again, with replay_abort in its trace.
    @Test func aReplayCutShortIsAbortedOnTheNextOpen() async throws {
        let directory = ServerFixture.directory()
        defer { removeDataDirectory(directory) }
        let first = try await CoreRuntime.open(directory: directory)
        let started = ReplayEvent(newTrace: "cut-short", fromTrace: "orig", mode: .live, speed: 1, spans: 0, status: .running)
        _ = try await first.log.append([
            EventCodec.encode(.replayStarted(started)),
            EventCodec.encode(.span(Span(traceId: "cut-short", source: "orchestrator", stage: "replay_start", timestamp: SegmentLog.now()))),
        ])
        await first.close()
        let reopened = try await CoreRuntime.open(directory: directory)
        let replays = try await reopened.traces.replays(limit: 10)
        #expect(replays.count == 1)
        #expect(replays.first?.jsonValue.objectValue?["status"] == .string("aborted"))
        let trace = try await reopened.traces.getTrace("cut-short")
        #expect(trace.spans.map(\.span.stage) == ["replay_start", "replay_abort"])
        await reopened.close()
        // Once closed, a further open leaves it alone.
        let third = try await CoreRuntime.open(directory: directory)
        #expect(try await third.traces.getTrace("cut-short").spans.count == 2)
        await third.close()
    }
}
