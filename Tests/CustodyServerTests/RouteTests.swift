import CustodyCore
import CustodyLog
import CustodyLogTesting
import CustodyServer
import CustodyServerTesting
import Foundation
import GRDB
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

@Suite struct LogRouteTests {
    @Test func oneEntryManyEntriesAndTheEntriesObject() async throws {
        try await ServerFixture.run { runtime, client in
            let one = try await client.call(
                .post,
                "/api/logs",
                json: #"{"trace_id":"t-1","source":"agent-factory","operation":"createAgent","duration_ms":3}"#
            )
            #expect(one.status == .ok && one.ok)
            #expect(one.data["trace_id"] as? String == "t-1")
            #expect(one.headers[HTTPField.Name("x-trace-id")!] != nil)

            let many = try await client.call(
                .post,
                "/api/logs",
                json: #"[{"trace_id":"t-2","stage":"before_rpc"},{"trace_id":"t-2","stage":"after_rpc"}]"#
            )
            #expect(many.data["accepted"] as? Int == 2)
            #expect(many.data["trace_ids"] as? [String] == ["t-2", "t-2"])
            let first = try #require(many.data["first_seq"] as? Int)
            #expect(many.data["last_seq"] as? Int == first + 1)
            // The seqs returned are the entries' own.
            let records = try await runtime.log.read(from: UInt64(first), maxRecords: 2)
            guard case .span(let span) = try EventCodec.decode(records[0]).body else {
                Issue.record("seq \(first) is not a span")
                return
            }
            #expect(span.traceId == "t-2" && span.stage == "before_rpc")

            let wrapped = try await client.call(.post, "/api/logs", json: #"{"entries":[{"source":"a"},{"source":"b"},{"source":"c"}]}"#)
            #expect(wrapped.data["accepted"] as? Int == 3)

            // Read back through the trace API, from the full history.
            let trace = try await client.call(.get, "/api/traces/t-2")
            let spans = try #require(trace.data["spans"] as? [[String: Any]])
            #expect(spans.map { $0["stage"] as? String } == ["before_rpc", "after_rpc"])
            #expect((trace.data["summary"] as? [String: Any])?["span_count"] as? Int == 2)
        }
    }

    @Test func aRequestIsTracedWithReceivedProcessingAndResponseSpans() async throws {
        try await ServerFixture.run { runtime, client in
            let response = try await client.call(
                .post,
                "/api/logs",
                json: #"{"source":"w"}"#,
                headers: [HTTPField.Name("x-trace-id")!: "req-42"]
            )
            #expect(response.headers[HTTPField.Name("x-trace-id")!] == "req-42")
            // response_sent goes in as the answer goes out.
            await runtime.context.responses.idle()
            let stages = try await spans(of: "req-42", in: runtime).map { "\($0.stage) \($0.operation)" }
            #expect(stages == ["request_received POST /api/logs", "processing recordLog", "response_sent POST /api/logs"])
        }
    }

    @Test func traceparentGivesTheTraceAndInvalidHeadersAreIgnored() async throws {
        try await ServerFixture.run { _, client in
            let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
            let fromParent = try await client.call(.get, "/healthz", headers: [HTTPField.Name("traceparent")!: parent])
            #expect(fromParent.headers[HTTPField.Name("x-trace-id")!] == "4bf92f3577b34da6a3ce929d0e0e4736")
            let both = try await client.call(
                .get,
                "/healthz",
                headers: [HTTPField.Name("traceparent")!: parent, HTTPField.Name("x-trace-id")!: "mine"]
            )
            #expect(both.headers[HTTPField.Name("x-trace-id")!] == "mine")
            let invalid = try await client.call(
                .get,
                "/healthz",
                headers: [HTTPField.Name("traceparent")!: "00-zz-00-01", HTTPField.Name("x-trace-id")!: "bad id with spaces"]
            )
            #expect(invalid.status == .ok)
            let generated = try #require(invalid.headers[HTTPField.Name("x-trace-id")!])
            #expect(UUID(uuidString: generated) != nil)
        }
    }
}

@Suite struct TaskRouteTests {
    @Test func createUpdateGetListAndTimeTravel() async throws {
        try await ServerFixture.run { runtime, client in
            let created = try await client.call(.post, "/api/tasks", json: #"{"order_id":"o-1","payload":{"kind":"agent"},"uuid":"task-1"}"#)
            #expect(created.status == .created)
            let task = try #require(created.data["task"] as? [String: Any])
            #expect(task["status"] as? String == "pending" && task["order_id"] as? String == "o-1")
            let createdSeq = try #require(task["last_seq"] as? Int)

            let same = try await client.call(.post, "/api/tasks", json: #"{"order_id":"o-1","payload":{"kind":"agent"},"uuid":"task-1"}"#)
            #expect(same.status == .ok)
            let conflict = try await client.call(.post, "/api/tasks", json: #"{"order_id":"o-2","payload":{"kind":"agent"},"uuid":"task-1"}"#)
            #expect(conflict.status == .conflict && conflict.errorCode == "conflict")

            let updated = try await client.call(.post, "/api/tasks/updateStatus", json: #"{"task_id":"task-1","status":"in_progress"}"#)
            #expect(updated.data["previous_status"] as? String == "pending" && updated.data["status"] as? String == "in_progress")

            let now = try await client.call(.get, "/api/tasks/task-1")
            #expect((now.data["task"] as? [String: Any])?["status"] as? String == "in_progress")
            let then = try await client.call(.get, "/api/tasks/task-1?as_of=\(createdSeq)")
            #expect((then.data["task"] as? [String: Any])?["status"] as? String == "pending")
            #expect(then.data["as_of_seq"] as? Int == createdSeq)

            _ = try await client.call(.post, "/api/tasks", json: #"{"order_id":"o-1","payload":{},"uuid":"task-2"}"#)
            let page = try await client.call(.get, "/api/tasks?order_id=o-1&limit=1")
            #expect((page.data["tasks"] as? [[String: Any]])?.count == 1)
            let cursor = try #require(page.data["next_cursor"] as? String)
            let next = try await client.call(.get, "/api/tasks?order_id=o-1&limit=1&cursor=\(cursor)")
            #expect(((next.data["tasks"] as? [[String: Any]])?.first)?["uuid"] as? String == "task-2")
            let byStatus = try await client.call(.get, "/api/tasks?status=in_progress")
            #expect((byStatus.data["tasks"] as? [[String: Any]])?.map { $0["uuid"] as? String } == ["task-1"])
            _ = runtime
        }
    }

    @Test func unknownTaskIs404AndTracedWithAnErrorSpan() async throws {
        try await ServerFixture.run { runtime, client in
            let response = try await client.call(
                .post,
                "/api/tasks/updateStatus",
                json: #"{"task_id":"nope","status":"complete"}"#,
                headers: [HTTPField.Name("x-trace-id")!: "missing-task"]
            )
            #expect(response.status == .notFound && response.errorCode == "task_not_found")
            let stages = try await spans(of: "missing-task", in: runtime).map(\.stage)
            #expect(stages == ["request_received", "error"])

            let get = try await client.call(.get, "/api/tasks/nope", headers: [HTTPField.Name("x-trace-id")!: "missing-get"])
            #expect(get.status == .notFound && get.errorCode == "task_not_found")
            #expect(try await spans(of: "missing-get", in: runtime).map(\.stage) == ["request_received", "error"])
        }
    }

    @Test func factoryErrorsLandInErrorEvents() async throws {
        try await ServerFixture.run { runtime, client in
            let response = try await client.call(
                .post,
                "/api/tasks/errors",
                json: #"{"source":"data-factory","message":"disk full","order_id":"o-9","error_type":"io","payload":{"path":"/x"}}"#
            )
            #expect(response.status == .created)
            let errorId = try #require(response.data["error_id"] as? String)
            try await runtime.projector.waitUntilApplied(await runtime.log.lastSeq)
            let row = try await runtime.sqliteStore.read { db in
                try String.fetchOne(db, sql: "SELECT message FROM error_events WHERE error_id = ?", arguments: [errorId])
            }
            #expect(row == "disk full")
        }
    }
}

@Suite struct DeliveryRouteTests {
    @Test func followupsFinalizeAndReport() async throws {
        try await ServerFixture.run { _, client in
            _ = try await client.call(.post, "/api/tasks", json: #"{"order_id":"ord-1","payload":{},"uuid":"d-task"}"#)
            let followup = try await client.call(
                .post,
                "/api/delivery/ord-1/followups",
                json: #"{"type":"review","note":"check logs","impact":"high"}"#
            )
            #expect(followup.status == .created)
            #expect((followup.data["followup"] as? [String: Any])?["impact"] as? String == "high")
            let list = try await client.call(.get, "/api/delivery/ord-1/followups")
            #expect((list.data["followups"] as? [[String: Any]])?.count == 1)

            let first = try await client.call(.post, "/api/delivery/ord-1/finalize")
            let report = try #require(first.data["report"] as? [String: Any])
            #expect(report["revision"] as? Int == 1)
            #expect((report["tasks"] as? [String: Any])?["pending"] as? Int == 1)
            let again = try await client.call(.post, "/api/delivery/ord-1/finalize")
            #expect((again.data["report"] as? [String: Any])?["revision"] as? Int == 1)
            _ = try await client.call(.post, "/api/tasks/updateStatus", json: #"{"task_id":"d-task","status":"complete"}"#)
            let second = try await client.call(.post, "/api/delivery/ord-1/finalize")
            #expect((second.data["report"] as? [String: Any])?["revision"] as? Int == 2)
            let latest = try await client.call(.get, "/api/delivery/ord-1/report")
            #expect((latest.data["report"] as? [String: Any])?["revision"] as? Int == 2)

            let unknown = try await client.call(.post, "/api/delivery/nobody/finalize")
            #expect(unknown.status == .notFound && unknown.errorCode == "not_found")
            let noReport = try await client.call(.get, "/api/delivery/nobody/report")
            #expect(noReport.status == .notFound)
        }
    }
}

@Suite struct TraceRouteTests {
    @Test func activeSearchDownloadsAndCompare() async throws {
        try await ServerFixture.run { _, client in
            _ = try await client.call(
                .post,
                "/api/logs",
                json: """
                    [{"trace_id":"A","source":"agent-factory","operation":"build","stage":"before_rpc","duration_ms":10,"timestamp":"2026-11-01T10:00:00Z"},
                     {"trace_id":"A","source":"data-factory","operation":"load","stage":"processing","duration_ms":100,"timestamp":"2026-11-01T10:00:01Z","details":{"rows":3}},
                     {"trace_id":"B","source":"agent-factory","operation":"build","stage":"before_rpc","duration_ms":10.5,"timestamp":"2026-11-02T10:00:00Z"},
                     {"trace_id":"B","source":"data-factory","operation":"load","stage":"processing","duration_ms":150,"timestamp":"2026-11-02T10:00:01Z"},
                     {"trace_id":"C","source":"ui-factory","operation":"render","stage":"error","timestamp":"2026-11-03T10:00:00Z","details":{"error":"boom"}}]
                    """
            )
            let active = try await client.call(.get, "/api/traces/active?source=agent-factory&limit=10")
            #expect((active.data["spans"] as? [[String: Any]])?.compactMap { $0["trace_id"] as? String } == ["B", "A"])

            let all = try await client.call(.get, "/api/traces?limit=2&source=agent-factory")
            #expect((all.data["traces"] as? [[String: Any]])?.compactMap { $0["trace_id"] as? String } == ["B", "A"])
            let errors = try await client.call(.get, "/api/traces?error=true")
            #expect((errors.data["traces"] as? [[String: Any]])?.compactMap { $0["trace_id"] as? String } == ["C"])
            let slow = try await client.call(.get, "/api/traces?min_duration_ms=1000&source=data-factory")
            #expect((slow.data["traces"] as? [[String: Any]])?.count == 2)
            let window = try await client.call(.get, "/api/traces?since=2026-11-02T00:00:00Z&until=2026-11-02T23:00:00Z")
            #expect((window.data["traces"] as? [[String: Any]])?.compactMap { $0["trace_id"] as? String } == ["B"])
            let paged = try await client.call(.get, "/api/traces?limit=1&operation=build")
            let cursor = try #require(paged.data["next_cursor"] as? String)
            let rest = try await client.call(.get, "/api/traces?limit=1&operation=build&cursor=\(cursor)")
            #expect((rest.data["traces"] as? [[String: Any]])?.compactMap { $0["trace_id"] as? String } == ["A"])
            // Stage and operation are found in the traces' spans, source in their summaries.
            let byStage = try await client.call(.get, "/api/traces?stage=error")
            #expect((byStage.data["traces"] as? [[String: Any]])?.compactMap { $0["trace_id"] as? String } == ["C"])
            let byBoth = try await client.call(.get, "/api/traces?stage=processing&operation=load&source=data-factory")
            #expect((byBoth.data["traces"] as? [[String: Any]])?.compactMap { $0["trace_id"] as? String } == ["B", "A"])
            let none = try await client.call(.get, "/api/traces?stage=processing&operation=render")
            #expect((none.data["traces"] as? [[String: Any]])?.isEmpty == true)
            let text = try await client.call(.get, "/api/traces?q=render")
            #expect((text.data["traces"] as? [[String: Any]])?.compactMap { $0["trace_id"] as? String } == ["C"])

            let trace = try await client.call(.get, "/api/traces/A")
            let spans = try #require(trace.data["spans"] as? [[String: Any]])
            #expect((spans[1]["details"] as? [String: Any])?["rows"] as? Int == 3)

            let csv = try await client.execute(uri: "/api/traces/A?format=csv", method: .get) { $0 }
            #expect(csv.headers[.contentType]?.hasPrefix("text/csv") == true)
            #expect(csv.headers[.contentDisposition] == "attachment; filename=\"A.csv\"")
            let lines = String(buffer: csv.body).split(separator: "\r\n")
            #expect(lines.count == 3 && lines[0].hasPrefix("seq,trace_id"))
            #expect(lines[2].contains(#""{""rows"":3}""#))
            let json = try await client.execute(uri: "/api/traces/A?format=json", method: .get) { $0 }
            #expect(json.headers[.contentDisposition] == "attachment; filename=\"A.json\"")

            let compare = try await client.call(.get, "/api/traces/A/compare/B")
            let pairs = try #require(compare.data["pairs"] as? [[String: Any]])
            #expect(pairs.count == 2)
            #expect(pairs.map { $0["deviates"] as? Bool } == [false, true])
            #expect(pairs[1]["delta_ms"] as? Double == 50)

            let missing = try await client.call(.get, "/api/traces/nope")
            #expect(missing.status == .notFound && missing.errorCode == "trace_not_found")
            let replays = try await client.call(.get, "/api/replays")
            #expect((replays.data["replays"] as? [Any])?.isEmpty == true)
        }
    }
}

@Suite struct OperationsRouteTests {
    @Test func healthReadinessMetricsAndStats() async throws {
        try await ServerFixture.run { _, client in
            #expect(try await client.call(.get, "/healthz").status == .ok)
            _ = try await client.call(.post, "/api/logs", json: #"{"source":"a"}"#)
            // Ready once the projections are within a second of the head: wait for it (a loaded
            // machine may take a moment to apply the write).
            var ready = try await client.call(.get, "/readyz")
            for _ in 0..<100 where ready.status != .ok {
                try await Task.sleep(for: .milliseconds(100))
                ready = try await client.call(.get, "/readyz")
            }
            #expect(ready.status == .ok)
            let metrics = try await client.execute(uri: "/metrics", method: .get) { String(buffer: $0.body) }
            for name in [
                "custody_log_head_seq", "custody_log_bytes_on_disk", "custody_projection_lag_events", "custody_cache_spans",
                "custody_live_clients", "custody_ingest_events_total", "custody_http_request_duration_seconds_bucket",
                "custody_log_fsync_duration_seconds_bucket", "custody_log_compression_ratio", "custody_outbox_depth",
                "custody_process_resident_bytes", "custody_process_heap_in_use_bytes", "custody_process_sqlite_bytes",
            ] {
                #expect(metrics.contains(name), "\(name) is missing from /metrics")
            }
            let stats = try await client.call(.get, "/api/admin/stats")
            let log = try #require(stats.data["log"] as? [String: Any])
            #expect((log["last_seq"] as? Int ?? 0) >= 3)
            #expect((stats.data["cache"] as? [String: Any])?["spans"] as? Int ?? 0 >= 1)
            // Where the memory is: resident, malloc's heap and in use, SQLite's page caches (the
            // projections have an open database, so SQLite holds some).
            let process = try #require(stats.data["process"] as? [String: Any])
            let resident = try #require(process["rss_bytes"] as? Int)
            let heap = try #require(process["heap_bytes"] as? Int)
            let inUse = try #require(process["heap_in_use_bytes"] as? Int)
            let sqlite = try #require(process["sqlite_bytes"] as? Int)
            #expect(sqlite > 0 && sqlite < inUse && inUse <= heap && resident > 0)
        }
    }

    @Test func unknownRoutesWrongMethodsAndPlainGetOfTheStream() async throws {
        try await ServerFixture.run { _, client in
            let unknown = try await client.call(.get, "/api/nothing")
            #expect(unknown.status == .notFound && unknown.errorCode == "not_found")
            let wrong = try await client.call(.put, "/api/tasks")
            #expect(wrong.status == .methodNotAllowed && wrong.errorCode == "method_not_allowed")
            #expect(wrong.headers[.allow]?.contains("POST") == true && wrong.headers[.allow]?.contains("GET") == true)
            let plain = try await client.call(.get, "/api/traces/live")
            #expect(plain.status == .upgradeRequired)
        }
    }
}

@Suite struct RefusalTests {
    /// Over the ingest bound: 429 with Retry-After, nothing appended.
    @Test func ingestOverItsBoundIsRefusedWithRetryAfter() async throws {
        var limits = ServerLimits()
        limits.maximumConcurrentIngest = 0
        try await ServerFixture.run(.router, limits: limits) { runtime, client in
            let before = await runtime.log.lastSeq
            let response = try await client.call(.post, "/api/logs", json: #"{"source":"a"}"#)
            #expect(response.status == .tooManyRequests && response.errorCode == "overloaded")
            #expect(response.headers[.retryAfter] == "1")
            #expect(await runtime.log.lastSeq == before)
            let stats = try await client.call(.get, "/api/admin/stats")
            #expect((stats.data["ingest"] as? [String: Any])?["refused"] as? Int == 1)
        }
    }

    /// A log that cannot be written (a failed fsync): 507 storage_unavailable, no acknowledgement,
    /// and ingest resumes by itself once the log can write again.
    @Test func aFailedFsyncIs507AndIngestResumes() async throws {
        let faults = FaultInjectingFileSystem()
        try await ServerFixture.run(.router, fileSystem: faults) { runtime, client in
            #expect(try await client.call(.post, "/api/logs", json: #"{"source":"before"}"#).status == .ok)
            // Its response_sent goes in after the answer: let it, so the fault hits the next request.
            await runtime.context.responses.idle()
            #expect(await runtime.log.lastSeq == 4)
            faults.failNextSynchronize()
            let failed = try await client.call(.post, "/api/logs", json: #"{"source":"lost"}"#)
            #expect(Int(failed.status.code) == 507 && failed.errorCode == "storage_unavailable")
            let resumed = try await client.call(.post, "/api/logs", json: #"{"trace_id":"after","source":"after"}"#)
            #expect(resumed.status == .ok)
            let trace = try await client.call(.get, "/api/traces/after")
            #expect((trace.data["spans"] as? [[String: Any]])?.count == 1)
        }
    }
}

@Suite struct ExtremeValueTests {
    /// Spans at both ends of the representable time range, with long durations, in one trace:
    /// summaries, search and the cache cope (a duration overflow once crashed the server).
    @Test func theWholeTimeRangeInOneTrace() async throws {
        try await ServerFixture.run(.router) { _, client in
            let response = try await client.call(
                .post,
                "/api/logs",
                json: """
                    [{"trace_id":"far","timestamp":"1678-01-01T00:00:00Z","duration_ms":999999999999},
                     {"trace_id":"far","timestamp":"2262-04-01T00:00:00Z","duration_ms":1}]
                    """
            )
            #expect(response.status == .ok)
            let trace = try await client.call(.get, "/api/traces/far")
            #expect((trace.data["summary"] as? [String: Any])?["span_count"] as? Int == 2)
            #expect(try await client.call(.get, "/api/traces?min_duration_ms=1000000000000").status == .ok)
            #expect(try await client.call(.get, "/api/traces/active").status == .ok)
        }
    }
}
