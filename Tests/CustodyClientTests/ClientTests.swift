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

/// The worker SDK against a real server over real sockets.
@Suite(.timeLimit(.minutes(2))) struct ClientTests {
    static func client(_ test: any TestClientProtocol) throws -> CustodyClient {
        CustodyClient(baseURL: "http://127.0.0.1:\(try #require(test.port))")
    }

    /// The critical path of a recorded trace, over HTTP (docs/api.md, "Trace analysis").
    @Test func criticalPathOfARecordedTrace() async throws {
        try await ServerFixture.run(.live) { _, test in
            let custody = try Self.client(test)
            func entry(_ id: String, _ parent: String?, _ source: String, _ from: Int, _ to: Int) -> LogEntry {
                LogEntry(
                    traceId: "cp-1",
                    spanId: id,
                    parentSpanId: parent,
                    source: source,
                    operation: id,
                    durationMs: Double(to - from),
                    timestamp: "2026-12-05T10:00:00.\(String(format: "%03d", from))Z"
                )
            }
            _ = try await custody.recordLog([
                entry("root", nil, "orchestrator", 0, 100), entry("plan", "root", "agent_factory", 10, 40),
                entry("load", "root", "data_factory", 20, 90), entry("check", "root", "ops-factory", 30, 60),
            ])
            let path = try await custody.criticalPath("cp-1")
            #expect(path.traceId == "cp-1" && path.durationMs == 100)
            #expect(path.path.map(\.operation) == ["root", "load"])
            #expect(path.path.map(\.selfMs) == [30, 70])
            #expect(path.path[1].startOffsetMs == 20 && path.path[1].sections == [[20, 90]] && path.path[1].depth == 1)
            #expect(path.bySource == ["orchestrator": 30, "data_factory": 70])
            // by_source as sent, source names untouched.
            let raw = try await test.call(.get, "/api/traces/cp-1/critical-path")
            #expect(raw.data["by_source"] as? [String: Double] == ["orchestrator": 30, "data_factory": 70])
            do {
                _ = try await custody.criticalPath("nobody")
                Issue.record("a trace that is not there has a critical path")
            } catch let error as CustodyClientError {
                #expect(error.status == 404 && error.code == "trace_not_found")
            }
        }
    }

    /// The custody graph over the spans sent: hand-offs with their calls, errors and latency; a
    /// source's edges; a window without them; a window the server refuses.
    @Test func graphOfRecordedHandOffs() async throws {
        try await ServerFixture.run(.live) { _, test in
            let custody = try Self.client(test)
            func entry(_ trace: String, _ id: String, _ parent: String?, _ source: String, _ ms: Double, error: Bool = false) -> LogEntry {
                LogEntry(
                    traceId: trace,
                    spanId: id,
                    parentSpanId: parent,
                    source: source,
                    stage: error ? "error" : "processing",
                    operation: id,
                    durationMs: ms,
                    timestamp: "2026-12-05T10:00:30Z"
                )
            }
            // Two traces: orchestrator calls agent_factory twice (one call fails), agent_factory
            // calls data-factory once; a child sent before its parent counts the same.
            _ = try await custody.recordLog([entry("g-1", "load", "plan", "data-factory", 20)])
            _ = try await custody.recordLog([
                entry("g-1", "root", nil, "orchestrator", 100), entry("g-1", "plan", "root", "agent_factory", 60),
                entry("g-2", "root", nil, "orchestrator", 50), entry("g-2", "plan", "root", "agent_factory", 30, error: true),
                entry("g-2", "more", "plan", "agent_factory", 5),
            ])
            let graph = try await custody.graph(since: "2026-12-05T10:00:00Z", until: "2026-12-05T10:00:59Z")
            #expect(graph.since == "2026-12-05T10:00:00.000Z" && graph.until == "2026-12-05T10:01:00.000Z", "\(graph.since) \(graph.until)")
            #expect(
                graph.edges.map { "\($0.from)>\($0.to) \($0.calls) \($0.errors)" } == [
                    "orchestrator>agent_factory 2 1", "agent_factory>data-factory 1 0",
                ]
            )
            #expect(graph.edges[1].p50Ms.map { abs($0 - 20) <= 20 * 0.045 } == true, "\(graph.edges[1])")
            #expect(graph.nodes.map { "\($0.source) \($0.spans) \($0.errors)" } == ["agent_factory 3 1", "orchestrator 2 0", "data-factory 1 0"])
            let around = try await custody.graph(since: "2026-12-05T10:00:00Z", until: "2026-12-05T10:00:59Z", source: "data-factory")
            #expect(around.edges.count == 1 && Set(around.nodes.map(\.source)) == ["agent_factory", "data-factory"])
            let later = try await custody.graph(since: "2026-12-05T10:01:00Z", until: "2026-12-05T11:00:00Z")
            #expect(later.edges.isEmpty && later.nodes.isEmpty)
            do {
                _ = try await custody.graph(since: "2026-12-05T11:00:00Z", until: "2026-12-05T10:00:00Z")
                Issue.record("a window that ends before it starts was answered")
            } catch let error as CustodyClientError {
                #expect(error.status == 422 && error.code == "invalid_argument" && error.field == "since", "\(error)")
            }
        }
    }

    /// The query language over HTTP: traces by query (a substring search still works), a metrics
    /// query's series with label names as the server wrote them, and its refusals.
    @Test func queryLanguageOverHTTP() async throws {
        try await ServerFixture.run(.live) { _, test in
            let custody = try Self.client(test)
            func entry(_ trace: String, _ id: String, _ parent: String?, _ source: String, _ ms: Double, user: String) -> LogEntry {
                LogEntry(
                    traceId: trace,
                    spanId: id,
                    parentSpanId: parent,
                    source: source,
                    operation: id,
                    durationMs: ms,
                    timestamp: "2026-12-05T10:00:30Z",
                    details: ["attributes": ["user_id": .string(user)]]
                )
            }
            _ = try await custody.recordLog([
                entry("ql-1", "root", nil, "orchestrator", 300, user: "u1"), entry("ql-1", "load", "root", "data-factory", 250, user: "u1"),
                entry("ql-2", "root", nil, "orchestrator", 40, user: "u2"), entry("ql-2", "load", "root", "data-factory", 20, user: "u2"),
            ])
            let slow = try await custody.queryTraces(#"{ source = "data-factory" && duration > 100ms }"#)
            #expect(slow.traces.map(\.traceId) == ["ql-1"])
            let below = try await custody.queryTraces(#"{ source = "orchestrator" } > { .attributes.user_id = "u2" }"#)
            #expect(below.traces.map(\.traceId) == ["ql-2"])
            #expect(try await custody.searchTraces(query: "ql-").traces.count == 2)
            let metrics = try await custody.queryMetrics(
                #"{ source = "data-factory" } | count_over_time() by (.attributes.user_id)"#,
                since: "2026-12-05T10:00:00Z",
                until: "2026-12-05T10:02:00Z",
                step: "1m"
            )
            #expect(metrics.stepSeconds == 60)
            #expect(metrics.series.map(\.labels) == [[".attributes.user_id": "u1"], [".attributes.user_id": "u2"]])
            #expect(metrics.series.map { $0.points.map { $0[1] } } == [[1, 0], [1, 0]])
            for (call, words) in [
                ({ _ = try await custody.queryTraces("{ duration > 1s }") }, "time window"),
                ({ _ = try await custody.queryTraces(#"{ source = "x" "#) }, "column 16"),
                ({ _ = try await custody.queryMetrics(#"{ source = "x" }"#) }, "not a metrics query"),
            ] as [(() async throws -> Void, String)] {
                do {
                    try await call()
                    Issue.record("answered: \(words)")
                } catch let error as CustodyClientError {
                    #expect(
                        error.status == 422 && error.code == "invalid_argument" && error.field == "q" && error.message.contains(words),
                        "\(error)"
                    )
                }
            }
        }
    }

    /// Every typed call works and decodes; errors carry the server's status, code and field.
    @Test func typedCallsForEveryOperation() async throws {
        try await ServerFixture.run(.live) { _, test in
            let custody = try Self.client(test)
            let task = try await custody.createTask(orderId: "o-1", payload: ["title": "logo", "size": 3])
            #expect(task.status == "pending" && task.orderId == "o-1" && task.payload["title"] == "logo")
            let change = try await custody.updateTaskStatus(taskId: task.uuid, status: "in_progress")
            #expect(change.previousStatus == "pending" && change.status == "in_progress")
            #expect(try await custody.getTask(task.uuid).status == "in_progress")
            let then = try await custody.getTask(task.uuid, asOf: String(task.lastSeq))
            #expect(then.status == "pending")
            #expect(try await custody.listTasks(orderId: "o-1").tasks.map(\.uuid) == [task.uuid])
            let errorId = try await custody.recordFactoryError(source: "agent-factory", message: "boom", orderId: "o-1", taskUUID: task.uuid)
            #expect(!errorId.isEmpty)
            let followup = try await custody.submitOpsFollowup(orderId: "o-1", type: "review", note: "check", impact: "high")
            #expect(followup.impact == "high")
            #expect(try await custody.fetchFollowups(orderId: "o-1").map(\.id) == [followup.id])
            let report = try await custody.finalizeDeliveryReport(orderId: "o-1")
            #expect(report["order_id"] == "o-1" && report["revision"] == 1)
            #expect(try await custody.getReport(orderId: "o-1")["revision"] == 1)
            let single = try await custody.recordLog(LogEntry(traceId: "sdk-1", source: "agent-factory", operation: "one"))
            #expect(single == "sdk-1")
            let many = try await custody.recordLog((0..<3).map { LogEntry(traceId: "sdk-2", source: "agent-factory", operation: "op\($0)") })
            #expect(many.accepted == 3 && many.lastSeq == many.firstSeq + 2)
            #expect(try await custody.getTrace("sdk-2").spans.filter { $0.source == "agent-factory" }.count == 3)
            let replay = try await custody.replayTrace("sdk-2")
            #expect(replay.status == "completed" && replay.spans == 3)
            #expect(try await custody.replays().contains { $0.newTrace == replay.newTrace && $0.speed == 0 && $0.mode == .dryRun })

            await #expect(throws: CustodyClientError.self) { _ = try await custody.getTask("nobody") }
            do {
                _ = try await custody.updateTaskStatus(taskId: "nobody", status: "complete")
                Issue.record("an unknown task was updated")
            } catch let error as CustodyClientError {
                #expect(error.status == 404 && error.code == "task_not_found")
            }
            do {
                _ = try await custody.updateTaskStatus(taskId: task.uuid, status: "exploded")
                Issue.record("an unknown status was taken")
            } catch let error as CustodyClientError {
                #expect(error.status == 422 && error.code == "invalid_argument" && error.field == "status")
            }
            let refusing = try RefusingPort()
            defer { refusing.close() }
            let unreachable = CustodyClient(baseURL: "http://127.0.0.1:\(refusing.port)", timeout: .seconds(2))
            do {
                _ = try await unreachable.getTrace("x")
                Issue.record("a closed port answered")
            } catch let error as CustodyClientError {
                #expect(error.status == 0 && error.code == "unreachable" && error.isTransient)
            }
        }
    }

    /// withTrace and orchestratorCall: the worker's spans and the server's spans of the call it
    /// made are one trace (x-trace-id / traceparent propagated), nested by parent span ids.
    @Test func workerSpansAndServerSpansShareTheTrace() async throws {
        try await ServerFixture.run(.live) { _, test in
            let custody = try Self.client(test)
            let exporter = SpanExporter(client: custody)
            let tracer = WorkerTracer(source: "agent-factory", client: custody, exporter: exporter)
            try await tracer.withTrace("flow-1", operation: "agent.handleOrder") {
                try await tracer.span("agent.plan") { try await Task.sleep(for: .milliseconds(5)) }
                _ = try await tracer.orchestratorCall("TaskOps.createTask") { client throws(CustodyClientError) in
                    try await client.createTask(orderId: "o-2", payload: [:])
                }
            }
            // A trace id that is a UUID travels as the W3C traceparent's trace id too.
            let uuid = UUID().uuidString.lowercased()
            try await tracer.withTrace(uuid, operation: "agent.other") {
                _ = try await tracer.orchestratorCall("TaskOps.listTasks") { client throws(CustodyClientError) in try await client.listTasks() }
            }
            await exporter.flush()
            #expect(exporter.statistics.exported == 9 && exporter.statistics.dropped == 0)
            let trace = try await custody.getTrace("flow-1")
            let byStage = Dictionary(grouping: trace.spans, by: \.stage)
            for stage in ["before_call", "after_call", "before_rpc", "after_rpc", "request_received", "response_sent"] {
                #expect(byStage[stage]?.count == 1, "\(stage)")
            }
            #expect(byStage["request_received"]?.first?.operation == "POST /api/tasks")
            let call = try #require(byStage["after_call"]?.first)
            #expect(call.parentSpanId == nil && call.details?["success"] == true)
            #expect(byStage["after_rpc"]?.first?.parentSpanId == call.spanId)
            #expect(byStage["after_rpc"]?.first?.details?["ok"] == true)
            #expect(trace.spans.first { $0.operation == "agent.plan" }?.parentSpanId == call.spanId)
            #expect(try await custody.getTrace(uuid).spans.contains { $0.stage == "request_received" && $0.operation == "GET /api/tasks" })
        }
    }

    /// The exporter never blocks: past its capacity spans are dropped and counted. A batch the
    /// server cannot store (a failed fsync: 507) is retried and arrives once.
    @Test func exporterBoundsItsQueueAndRetries() async throws {
        let faults = FaultInjectingFileSystem()
        try await ServerFixture.run(.live, fileSystem: faults) { _, test in
            let custody = try Self.client(test)
            var settings = SpanExporter.Configuration()
            settings.capacity = 100
            settings.batchSize = 40
            settings.initialBackoff = .milliseconds(20)
            let exporter = SpanExporter(client: custody, configuration: settings)
            let accepted = (0..<150).map { exporter.record(LogEntry(traceId: "bounded", source: "w", operation: "op\($0)")) }
            #expect(accepted.filter { $0 }.count == 100)
            #expect(exporter.statistics.dropped == 50 && exporter.statistics.queued == 100)
            faults.failNextSynchronize()
            await exporter.flush()
            let statistics = exporter.statistics
            #expect(statistics.exported == 100 && statistics.retries >= 1 && statistics.dropped == 50 && statistics.queued == 0)
            let spans = try await custody.getTrace("bounded").spans.filter { $0.source == "w" }
            #expect(spans.count == 100)
            #expect(Set(spans.map(\.operation)).count == 100)
        }
    }

    /// A 429 with Retry-After: the exporter waits at least that long before the retry, and a batch
    /// whose retries run out is dropped and counted.
    @Test func exporterHonoursRetryAfter() async throws {
        var limits = ServerLimits()
        limits.maximumConcurrentIngest = 0
        try await ServerFixture.run(.live, limits: limits) { _, test in
            let custody = try Self.client(test)
            var settings = SpanExporter.Configuration()
            settings.maximumAttempts = 2
            settings.initialBackoff = .milliseconds(1)
            let exporter = SpanExporter(client: custody, configuration: settings)
            exporter.record(LogEntry(traceId: "refused", source: "w"))
            let started = ContinuousClock.now
            await exporter.flush()
            let elapsed = ContinuousClock.now - started
            #expect(elapsed >= .seconds(1), "\(elapsed)")
            #expect(exporter.statistics.retries == 1 && exporter.statistics.dropped == 1 && exporter.statistics.exported == 0)
        }
    }
}
