import CustodyCore
import CustodyLog
import CustodyLogTesting
import Foundation
import GRDB
import NIOCore
import Testing

/// A varied, coherent stream of events: tasks that change status, follow-ups and errors for
/// orders, spans of traces (some errors), replays of earlier traces, GitHub operations that
/// succeed or fail, delivery reports.
struct ScenarioGenerator {
    var random: SplitMix64
    var tasks: [(uuid: String, status: TaskStatus)] = []
    var traces: [String] = []
    var githubPending: [(String, GitHubOperationKind)] = []
    var replaysRunning: [ReplayEvent] = []
    var counter = 0
    var time: Int64 = 1_793_739_600_000_000_000

    init(seed: UInt64) { random = SplitMix64(seed: seed) }

    mutating func next() -> EventBody {
        counter += 1
        time += Int64(random.next(upperBound: 5_000_000))
        let roll = random.next(upperBound: 100)
        let order = "order-\(random.next(upperBound: 20))"
        switch roll {
        case 0..<10:
            let uuid = "task-\(counter)"
            tasks.append((uuid, .pending))
            return .taskCreated(TaskCreated(uuid: uuid, orderId: order, payload: JSONValue.object(["n": .integer(Int64(counter))]).jsonText))
        case 10..<20 where !tasks.isEmpty:
            let index = Int(random.next(upperBound: UInt64(tasks.count)))
            let status = TaskStatus.allCases[Int(random.next(upperBound: 6))]
            let previous = tasks[index].status
            tasks[index].status = status
            return .taskStatusChanged(TaskStatusChanged(uuid: tasks[index].uuid, status: status, previousStatus: previous))
        case 20..<24:
            return .factoryErrorRecorded(
                FactoryErrorRecorded(
                    errorId: "error-\(counter)",
                    source: "data-factory",
                    message: "failed \(counter)",
                    orderId: order,
                    taskUUID: tasks.last?.uuid,
                    errorType: random.next(upperBound: 2) == 0 ? nil : "timeout"
                )
            )
        case 24..<28:
            return .followupSubmitted(
                FollowupSubmitted(
                    id: "followup-\(counter)",
                    orderId: order,
                    type: "qa",
                    note: "note \(counter)",
                    impact: .allCases[Int(random.next(upperBound: 4))]
                )
            )
        case 28..<30:
            return .deliveryFinalized(
                DeliveryFinalized(orderId: order, revision: random.next(upperBound: 5) + 1, report: JSONValue.object(["tasks": .integer(3)]).jsonText)
            )
        case 30..<33:
            let id = "gh-\(counter)"
            let kind = GitHubOperationKind.allCases[Int(random.next(upperBound: 3))]
            githubPending.append((id, kind))
            return .githubRequested(
                GitHubRequested(
                    operationId: id,
                    kind: kind,
                    idempotencyKey: "key-\(counter)",
                    traceId: "trace-\(counter)",
                    params: JSONValue.object(["path": .string("README.md")]).jsonText
                )
            )
        case 33..<34 where !githubPending.isEmpty:
            let (id, kind) = githubPending[0]
            return .githubAttemptFailed(
                GitHubAttemptFailed(
                    operationId: id,
                    kind: kind,
                    attempt: UInt32(random.next(upperBound: 3) + 1),
                    retryAt: Int64(counter) * 1_000_000,
                    error: JSONValue.object(["status": .integer(502)]).jsonText
                )
            )
        case 34..<35 where !githubPending.isEmpty:
            let (id, kind) = githubPending.removeFirst()
            let finished = GitHubFinished(
                operationId: id,
                kind: kind,
                attempt: UInt32(random.next(upperBound: 3) + 1),
                outcome: JSONValue.object(["status": .integer(201)]).jsonText
            )
            return random.next(upperBound: 3) == 0 ? .githubFailed(finished) : .githubSucceeded(finished)
        case 35..<37 where !traces.isEmpty:
            let replay = ReplayEvent(
                newTrace: "replay-\(counter)",
                fromTrace: traces[Int(random.next(upperBound: UInt64(traces.count)))],
                mode: .dryRun,
                speed: 0,
                spans: 0,
                status: .running
            )
            replaysRunning.append(replay)
            traces.append(replay.newTrace)
            return .replayStarted(replay)
        case 38..<39:
            // What a repair records (the projections keep it; nothing else depends on it).
            return .logLoss(
                LogLoss(
                    firstSeq: UInt64(counter),
                    lastSeq: UInt64(counter) - 1,
                    segment: "00000000000000000001.log",
                    offset: Int64(counter) * 48,
                    length: 0,
                    sideFile: nil,
                    reason: "generated",
                    recordedAt: time
                )
            )
        case 39..<40:
            // What the checkpoint writer appends (the projections list it; its signature is
            // checked by verify, not here).
            let bytes = (0..<32).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            return .logCheckpoint(
                LogCheckpoint(
                    seq: UInt64(counter),
                    chain: ChainValue(bytes: bytes) ?? .zero,
                    at: time,
                    publicKey: bytes,
                    nextPublicKey: nil,
                    signature: bytes + bytes
                )
            )
        case 40..<41:
            // What a retention pass records (the projections keep it; the deletion itself and the
            // pruning it brings are RetentionCommandTests').
            let bytes = (0..<32).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            return .logRetention(
                LogRetention(
                    firstSeq: 1,
                    lastSeq: UInt64(counter / 2),
                    chain: ChainValue(bytes: bytes) ?? .zero,
                    snapshot: "state-\(counter / 2).sqlite",
                    bytes: Int64(counter) * 100,
                    recordedAt: time
                )
            )
        case 37..<38 where !replaysRunning.isEmpty:
            var replay = replaysRunning.removeFirst()
            replay.status = .completed
            replay.spans = UInt32(random.next(upperBound: 50))
            return .replayCompleted(replay)
        default:
            if traces.isEmpty || random.next(upperBound: 8) == 0 { traces.append("trace-\(counter)") }
            let trace = traces[traces.count - 1 - Int(random.next(upperBound: UInt64(min(traces.count, 5))))]
            let stages = ["request_received", "processing", "response_sent", "error", "before_rpc"]
            let details: JSONText? =
                switch random.next(upperBound: 4) {
                case 0: nil
                case 1: JSONValue.object(["error": .string("boom")]).jsonText
                default: JSONValue.object(["ok": .bool(true), "nested": .object(["error": .string("not top level")])]).jsonText
                }
            // Parents (for the custody graph) among nearby spans: earlier or later ones, of this
            // trace or another; now and then an id given twice, or none.
            let parentSpanId: String? =
                switch random.next(upperBound: 6) {
                case 0: nil
                case 1: "span-\(counter + 1 + Int(random.next(upperBound: 8)))"
                default: "span-\(counter - 1 - Int(random.next(upperBound: 12)))"
                }
            let spanId = random.next(upperBound: 40) == 0 ? "span-\(counter - 1)" : "span-\(counter)"
            return .span(
                Span(
                    traceId: trace,
                    spanId: spanId,
                    parentSpanId: parentSpanId,
                    source: ["agent-factory", "ui-factory", "orchestrator"][Int(random.next(upperBound: 3))],
                    stage: stages[Int(random.next(upperBound: UInt64(stages.count)))],
                    operation: "op\(random.next(upperBound: 7))",
                    taskUUID: tasks.last?.uuid,
                    durationMs: Double(random.next(upperBound: 5000)) / 10,
                    timestamp: time - Int64(random.next(upperBound: 1_000_000_000)),
                    details: details
                )
            )
        }
    }
}

/// A row as column → text (NULL as "NULL"), to carry out of a database read.
func fetchRow(_ db: Database, _ sql: String) throws -> [String: String]? {
    guard let row = try Row.fetchOne(db, sql: sql) else { return nil }
    var result: [String: String] = [:]
    for column in row.columnNames {
        let value: DatabaseValue = row[column]
        switch value.storage {
        case .null: result[column] = "NULL"
        case .int64(let integer): result[column] = String(integer)
        case .double(let double): result[column] = String(double)
        case .string(let string): result[column] = string
        case .blob(let data): result[column] = data.base64EncodedString()
        }
    }
    return result
}

@Suite struct ProjectionTests {
    static func temporaryDirectory() -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("custody-projections-\(UUID().uuidString)").path
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    @Test func eventsLandInTheirTables() async throws {
        let directory = Self.temporaryDirectory()
        defer { removeDataDirectory(directory) }
        let log = try await SegmentLog.open(directory: directory + "/log")
        let t0: Int64 = 1_793_739_600_000_000_000
        let bodies: [EventBody] = [
            .taskCreated(TaskCreated(uuid: "t1", orderId: "o1", payload: JSONText(#"{"a":1}"#))),
            .taskStatusChanged(TaskStatusChanged(uuid: "t1", status: .inProgress, previousStatus: .pending)),
            .span(
                Span(
                    traceId: "tr",
                    parentSpanId: "root",
                    source: "ui-factory",
                    stage: "request_received",
                    operation: "render",
                    durationMs: 10,
                    timestamp: t0 + 5_000_000
                )
            ),
            .span(
                Span(traceId: "tr", spanId: "root", source: "agent-factory", stage: "processing", operation: "root", durationMs: 100, timestamp: t0)
            ),
            .span(
                Span(
                    traceId: "tr",
                    source: "ui-factory",
                    stage: "processing",
                    operation: "x",
                    timestamp: t0 + 1,
                    details: JSONText(#"{"error":"boom"}"#)
                )
            ),
            .span(
                Span(
                    traceId: "tr",
                    source: "ui-factory",
                    stage: "processing",
                    operation: "y",
                    timestamp: t0 + 2,
                    details: JSONText(#"{"inner":{"error":1}}"#)
                )
            ),
            .replayStarted(ReplayEvent(newTrace: "tr2", fromTrace: "tr", mode: .live, speed: 1, spans: 0, status: .running)),
            .span(Span(traceId: "tr2", stage: "replay_start", operation: "replay", timestamp: t0 + 10)),
            .replayCompleted(ReplayEvent(newTrace: "tr2", fromTrace: "tr", mode: .live, speed: 1, spans: 4, status: .completed)),
            .followupSubmitted(FollowupSubmitted(id: "f1", orderId: "o1", type: "qa", note: "check", impact: .high)),
            .factoryErrorRecorded(FactoryErrorRecorded(errorId: "e1", source: "data-factory", message: "bad", orderId: "o1")),
            .githubRequested(
                GitHubRequested(operationId: "g1", kind: .createIssue, idempotencyKey: "g1", traceId: "tr", params: JSONText(#"{"title":"x"}"#))
            ),
            .githubAttemptFailed(
                GitHubAttemptFailed(operationId: "g1", kind: .createIssue, attempt: 1, retryAt: t0 + 5, error: JSONText(#"{"status":503}"#))
            ),
            .githubFailed(GitHubFinished(operationId: "g1", kind: .createIssue, attempt: 2, outcome: JSONText(#"{"status":502}"#))),
            .deliveryFinalized(DeliveryFinalized(orderId: "o1", revision: 1, report: JSONText(#"{"errors":1}"#))),
            .logLoss(LogLoss(firstSeq: 3, lastSeq: 2, segment: "x.log", offset: 48, length: 10, sideFile: nil, reason: "test", recordedAt: t0)),
            .logCheckpoint(try LogCheckpoint(head: ChainHead(seq: 9, chain: .zero), at: t0, key: SigningKey.generate())),
            .logRetention(LogRetention(firstSeq: 1, lastSeq: 0, chain: .zero, snapshot: "state-0.sqlite", bytes: 0, recordedAt: t0)),
        ]
        _ = try await log.append(bodies.map(EventCodec.encode))
        _ = try await log.append(ByteBuffer(string: "not an event"))
        let store = try SQLiteProjectionStore(path: directory + "/projections.sqlite")
        let projector = Projector(log: log, store: store)
        try await projector.catchUp()
        // Every event and the record that is not one.
        #expect(try await store.appliedSeq() == UInt64(bodies.count + 1))

        let rows = try await store.read { db in
            (
                task: try fetchRow(db, "SELECT status, order_id, payload, created_seq, last_seq FROM tasks WHERE uuid = 't1'"),
                summary: try fetchRow(db, "SELECT * FROM trace_summaries WHERE trace_id = 'tr'"),
                replaySummary: try fetchRow(db, "SELECT replay_of, span_count FROM trace_summaries WHERE trace_id = 'tr2'"),
                replay: try fetchRow(db, "SELECT status, spans, mode FROM replays WHERE new_trace = 'tr2'"),
                errors: try Int.fetchAll(db, sql: "SELECT is_error FROM operation_logs WHERE trace_id = 'tr' ORDER BY seq"),
                github: try fetchRow(db, "SELECT status, attempts, error FROM github_operations WHERE id = 'g1'"),
                counts: try SQLiteProjectionStore.tables.map { try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM \($0)")! }
            )
        }
        #expect(rows.task?["status"] == "in_progress" && rows.task?["order_id"] == "o1" && rows.task?["payload"] == #"{"a":1}"#)
        #expect(rows.task?["created_seq"] == "1" && rows.task?["last_seq"] == "2")
        let summary = try #require(rows.summary)
        #expect(summary["root_operation"] == "root")
        #expect(summary["start"] == String(t0) && summary["end"] == String(t0 + 100_000_000))
        #expect(summary["span_count"] == "4" && summary["error_count"] == "1")
        #expect(summary["sources"] == #"["ui-factory","agent-factory"]"#)
        #expect(rows.replaySummary?["replay_of"] == "tr" && rows.replaySummary?["span_count"] == "1")
        #expect(rows.replay?["status"] == "completed" && rows.replay?["spans"] == "4" && rows.replay?["mode"] == "live")
        // details.error at the top level makes an error span; nested does not.
        #expect(rows.errors == [0, 0, 1, 0])
        let github = try #require(rows.github)
        #expect(github["status"] == "failed")
        #expect(github["attempts"] == "2")
        #expect(github["error"] == #"{"status":502}"#)
        // tasks, followups, operation_logs, error_events, delivery_reports, github_operations, replays, trace_summaries,
        // log_losses, log_checkpoints, log_retentions, retired_traces (filled by retention's pruning only),
        // graph_nodes (three sources in one minute), graph_edges (agent-factory → ui-factory, its
        // child recorded first)
        #expect(rows.counts == [1, 1, 5, 1, 1, 1, 1, 2, 1, 1, 1, 0, 3, 1])
        try store.closeDatabase()
        await log.close()
    }

    /// Projections built incrementally — while the log grows, with the projector stopped at random
    /// points as a crash would stop it — equal a rebuild from the first seq, table by table, row by
    /// row.
    @Test func incrementalProjectionsWithCrashesEqualARebuild() async throws {
        let directory = Self.temporaryDirectory()
        defer { removeDataDirectory(directory) }
        let log = try await SegmentLog.open(directory: directory + "/log", configuration: LogConfiguration(segmentBytes: 256 << 10))
        var generator = ScenarioGenerator(seed: 77)
        var random = SplitMix64(seed: 78)
        let incrementalPath = directory + "/incremental.sqlite"
        for round in 0..<12 {
            // The log grows by a few thousand events, in appends of varied size.
            var appended = 0
            let target = 1000 + Int(random.next(upperBound: 3000))
            while appended < target {
                let count = 1 + Int(random.next(upperBound: 200))
                _ = try await log.append((0..<count).map { _ in EventCodec.encode(generator.next()) })
                appended += count
            }
            // A projector runs for a while and is stopped wherever it is ("crash"): its store is
            // closed with no clean-up, and the next round reopens it from its checkpoint.
            // trace_keys written every few hundred traces, so that lookups go both ways.
            let store = try SQLiteProjectionStore(path: incrementalPath, keysWrittenPerMerge: 1 + Int(random.next(upperBound: 300)))
            let projector = Projector(log: log, store: store, batchSize: 1 + Int(random.next(upperBound: 3000)))
            let running = Task { try await projector.run() }
            try await Task.sleep(for: .milliseconds(Int(random.next(upperBound: 40))))
            running.cancel()
            _ = try? await running.value
            try store.closeDatabase()
            _ = round
        }
        // Finally catch up (writing trace_keys every 500 new traces, whatever the rounds did),
        // then a few more traces that stay in memory, then compare with a rebuild.
        let catchingUp = try SQLiteProjectionStore(path: incrementalPath, keysWrittenPerMerge: 500)
        try await Projector(log: log, store: catchingUp).catchUp()
        try catchingUp.closeDatabase()
        _ = try await log.append(
            (0..<20).map { n in EventCodec.encode(.span(Span(traceId: "late-\(n % 5)", operation: "late", timestamp: Int64(n)))) }
        )
        let store = try SQLiteProjectionStore(path: incrementalPath)
        try await Projector(log: log, store: store).catchUp()
        let head = await log.lastSeq
        #expect(head > 20_000)
        #expect(try await store.appliedSeq() == head)
        let incremental = try await store.dump()
        let incrementalTraceSpans = try await store.traceSpanPairs()
        try store.closeDatabase()
        // Every trace is found by its id, whether in trace_keys or in memory (as loaded on open).
        let numbered = try await SQLiteProjectionStore(path: incrementalPath, keysWrittenPerMerge: 100)
        let traces = try await numbered.read { db in
            try Row.fetchAll(db, sql: "SELECT id, trace_id FROM trace_summaries").map { ($0["id"] as Int64, $0["trace_id"] as String) }
        }
        let indexed = try await numbered.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM trace_keys") ?? 0 }
        #expect(indexed > 0 && indexed < traces.count, "\(indexed) of \(traces.count) traces in trace_keys: lookups do not go both ways")
        for (id, traceId) in traces {
            let found = try await numbered.traceNumber(traceId)
            #expect(found == id, "trace \(traceId) not found")
        }
        #expect(try await numbered.traceNumber("no-such-trace") == nil)
        try numbered.closeDatabase()

        let rebuiltPath = directory + "/rebuilt.sqlite"
        let report = try await ProjectionRebuild.rebuild(log: log, databasePath: rebuiltPath, snapshots: nil)
        #expect(report.events == head)
        let rebuiltStore = try SQLiteProjectionStore(path: rebuiltPath)
        let rebuilt = try await rebuiltStore.dump()
        // trace_spans follows the batches; what it says must be the same.
        let rebuiltTraceSpans = try await rebuiltStore.traceSpanPairs()
        #expect(incrementalTraceSpans.count == (incremental["operation_logs"] ?? []).count)
        #expect(incrementalTraceSpans == rebuiltTraceSpans)
        #expect(try await rebuiltStore.appliedSeq() == head)
        try rebuiltStore.closeDatabase()
        for table in SQLiteProjectionStore.tables {
            let left = incremental[table] ?? []
            let right = rebuilt[table] ?? []
            #expect(left.count == right.count, "\(table): \(left.count) rows incrementally, \(right.count) rebuilt")
            #expect(left == right, "\(table) differs")
            // retired_traces is written by retention's pruning only (RetentionCommandTests).
            #expect(!left.isEmpty || table == "retired_traces", "\(table) is empty: the scenario does not exercise it")
        }
        await log.close()
    }

    @Test func readYourWritesWaitsForTheProjection() async throws {
        let directory = Self.temporaryDirectory()
        defer { removeDataDirectory(directory) }
        let log = try await SegmentLog.open(directory: directory + "/log")
        let store = try SQLiteProjectionStore(path: directory + "/projections.sqlite")
        let projector = Projector(log: log, store: store)
        let receipt = try await log.append(EventCodec.encode(.taskCreated(TaskCreated(uuid: "t", orderId: "o", payload: JSONText("{}")))))
        // Not running: the wait ends with a clear error.
        do {
            try await projector.waitUntilApplied(receipt.lastSeq, timeout: .milliseconds(50))
            Issue.record("the wait succeeded with no projector running")
        } catch {
            #expect(error.code == .overloaded)
        }
        let running = Task { try await projector.run() }
        try await projector.waitUntilApplied(receipt.lastSeq, timeout: .seconds(10))
        let status = try await store.read { db in try String.fetchOne(db, sql: "SELECT status FROM tasks WHERE uuid = 't'") }
        #expect(status == "pending")
        #expect(await projector.lag().events == 0)
        running.cancel()
        _ = try? await running.value
        try store.closeDatabase()
        await log.close()
    }
}
