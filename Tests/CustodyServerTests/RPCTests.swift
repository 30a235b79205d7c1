import CustodyClient
import CustodyCore
import CustodyLog
import CustodyRPC
import CustodyServer
import CustodyServerTesting
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import GRPCProtobuf
import HummingbirdTesting
import SwiftProtobuf
import Testing

/// The gRPC services over real sockets with grpc-swift's own client: every method, the error
/// mapping, trace propagation, and the live stream's catch-up boundary and slow consumers.
@Suite(.timeLimit(.minutes(2))) struct RPCTests {
    typealias Client = GRPCClient<HTTP2ClientTransport.Posix>

    /// A server with RPC; `body` gets a connected gRPC client.
    static func withRPC<Value: Sendable>(
        limits: ServerLimits = ServerLimits(),
        tokens: [String: AccessRole] = [:],
        github: GitHubSettings? = nil,
        _ body: @escaping @Sendable (CoreRuntime, Client, any TestClientProtocol) async throws -> Value
    ) async throws -> Value {
        let port = Shared(0)
        return try await ServerFixture.run(limits: limits, tokens: tokens, github: github, rpcPort: port) { runtime, http in
            for _ in 0..<400 where port.withLock({ $0 }) == 0 { try await Task.sleep(for: .milliseconds(10)) }
            let bound = port.withLock { $0 }
            try #require(bound != 0, "the RPC server did not start")
            return try await withGRPCClient(
                transport: try .http2NIOPosix(target: .ipv4(address: "127.0.0.1", port: bound), transportSecurity: .plaintext)
            ) { client in
                try await body(runtime, client, http)
            }
        }
    }

    static func structure(_ json: String) throws -> Google_Protobuf_Struct { try Google_Protobuf_Struct(jsonString: json) }

    @Test func everyMethodAnswersOverGRPC() async throws {
        try await Self.withRPC { runtime, client, _ in
            let tasks = Custody_V1_TaskOps.Client(wrapping: client)
            var create = Custody_V1_CreateTaskRequest()
            create.orderID = "o-rpc"
            create.payload = try Self.structure(#"{"title":"logo","size":3}"#)
            let created = try await tasks.createTask(create)
            #expect(created.created && created.task.status == "pending" && created.task.orderID == "o-rpc")
            #expect(created.task.payload.fields["title"]?.stringValue == "logo")
            var update = Custody_V1_UpdateTaskStatusRequest()
            update.taskID = created.task.uuid
            update.status = "in_progress"
            let change = try await tasks.updateTaskStatus(update)
            #expect(change.previousStatus == "pending" && change.status == "in_progress")
            var get = Custody_V1_GetTaskRequest()
            get.uuid = created.task.uuid
            #expect(try await tasks.getTask(get).task.status == "in_progress")
            get.asOf = String(created.task.lastSeq)
            let then = try await tasks.getTask(get)
            #expect(then.task.status == "pending" && then.asOfSeq == created.task.lastSeq)
            var failure = Custody_V1_RecordFactoryErrorRequest()
            failure.source = "agent-factory"
            failure.message = "boom"
            failure.orderID = "o-rpc"
            #expect(!(try await tasks.recordFactoryError(failure)).errorID.isEmpty)

            let delivery = Custody_V1_DeliveryOps.Client(wrapping: client)
            var followup = Custody_V1_SubmitOpsFollowupRequest()
            followup.orderID = "o-rpc"
            followup.type = "review"
            followup.note = "check"
            followup.impact = "high"
            let submitted = try await delivery.submitOpsFollowup(followup)
            #expect(submitted.impact == "high" && !submitted.createdAt.isEmpty)
            var fetch = Custody_V1_FetchFollowupsRequest()
            fetch.orderID = "o-rpc"
            #expect(try await delivery.fetchFollowups(fetch).followups.map(\.id) == [submitted.id])
            var finalize = Custody_V1_FinalizeDeliveryReportRequest()
            finalize.orderID = "o-rpc"
            let report = try await delivery.finalizeDeliveryReport(finalize).report
            #expect(report.fields["revision"]?.numberValue == 1 && report.fields["errors"]?.numberValue == 1)

            let logs = Custody_V1_LogOps.Client(wrapping: client)
            var record = Custody_V1_RecordLogRequest()
            record.entries = (0..<3).map { index in
                var entry = Custody_V1_LogEntry()
                entry.traceID = "rpc-trace"
                entry.source = "agent-factory"
                entry.operation = "op\(index)"
                entry.durationMs = 5
                entry.details = try! Self.structure(#"{"n":\#(index)}"#)
                return entry
            }
            let recorded = try await logs.recordLog(record)
            #expect(
                recorded.accepted == 3 && recorded.lastSeq == recorded.firstSeq + 2 && recorded.traceIds == ["rpc-trace", "rpc-trace", "rpc-trace"]
            )
            var getTrace = Custody_V1_GetTraceRequest()
            getTrace.traceID = "rpc-trace"
            let trace = try await logs.getTrace(getTrace)
            let factorySpans = trace.spans.filter { $0.source == "agent-factory" }
            #expect(factorySpans.map(\.operation) == ["op0", "op1", "op2"])
            #expect(factorySpans.last?.details.fields["n"]?.numberValue == 2)
            #expect(trace.summary.spanCount >= 3 && trace.summary.sources.contains("agent-factory"))

            var replay = Custody_V1_ReplayTraceRequest()
            replay.traceID = "rpc-trace"
            let replayed = try await Custody_V1_TraceReplay.Client(wrapping: client).replayTrace(replay)
            #expect(replayed.status == "completed" && replayed.fromTrace == "rpc-trace" && replayed.mode == "dry-run" && replayed.spans >= 3)

            // GitHub without a token: FAILED_PRECONDITION, docs/api.md's code in the trailers.
            var issue = Custody_V1_CreateIssueRequest()
            issue.title = "t"
            await Self.expectError(.failedPrecondition, code: "github_not_configured") {
                _ = try await Custody_V1_GitHubOps.Client(wrapping: client).createIssue(issue)
            }
            var operation = Custody_V1_GetOperationRequest()
            operation.id = "missing"
            await Self.expectError(.notFound, code: "not_found") {
                _ = try await Custody_V1_GitHubOps.Client(wrapping: client).getOperation(operation)
            }
            _ = runtime
        }
    }

    static func expectError(
        _ code: RPCError.Code,
        code apiCode: String,
        field: String? = nil,
        sourceLocation: SourceLocation = #_sourceLocation,
        _ body: () async throws -> Void
    ) async {
        do {
            try await body()
            Issue.record("no error", sourceLocation: sourceLocation)
        } catch let error as RPCError {
            #expect(error.code == code, sourceLocation: sourceLocation)
            #expect(error.metadata[stringValues: "custody-error-code"].first(where: { _ in true }) == apiCode, sourceLocation: sourceLocation)
            if let field {
                #expect(error.metadata[stringValues: "custody-error-field"].first(where: { _ in true }) == field, sourceLocation: sourceLocation)
            }
        } catch {
            Issue.record("not an RPCError: \(error)", sourceLocation: sourceLocation)
        }
    }

    /// The SDK with a gRPC connection: the same typed calls and errors as over HTTP, the current
    /// trace in the metadata. Its HTTP address points nowhere, so every call below went over gRPC.
    @Test func theSDKSpeaksGRPC() async throws {
        let port = Shared(0)
        try await ServerFixture.run(rpcPort: port) { runtime, _ in
            for _ in 0..<400 where port.withLock({ $0 }) == 0 { try await Task.sleep(for: .milliseconds(10)) }
            let connection = try CustodyRPCConnection(host: "127.0.0.1", port: port.withLock { $0 })
            defer { connection.close() }
            let custody = CustodyClient(baseURL: "http://127.0.0.1:1", rpc: connection)
            let task = try await custody.createTask(orderId: "o-sdk", payload: ["title": "logo", "size": 3])
            #expect(task.status == "pending" && task.payload["title"] == "logo")
            #expect(try await custody.updateTaskStatus(taskId: task.uuid, status: "complete").previousStatus == "pending")
            #expect(try await custody.getTask(task.uuid).status == "complete")
            let then = try await custody.getTask(task.uuid, asOf: String(task.lastSeq))
            #expect(then.status == "pending" && then.asOfSeq == task.lastSeq)
            #expect(!(try await custody.recordFactoryError(source: "agent-factory", message: "boom", orderId: "o-sdk")).isEmpty)
            let followup = try await custody.submitOpsFollowup(orderId: "o-sdk", type: "qa", note: "n", impact: "low")
            #expect(try await custody.fetchFollowups(orderId: "o-sdk").map(\.id) == [followup.id])
            #expect(try await custody.finalizeDeliveryReport(orderId: "o-sdk")["revision"] == 1)
            let traced = try await CustodyTrace.$current.withValue(CustodyTrace(traceId: "sdk-rpc-call")) {
                try await custody.recordLog(LogEntry(traceId: "sdk-rpc-trace", source: "agent-factory", operation: "one", details: ["k": "v"]))
            }
            #expect(traced == "sdk-rpc-trace")
            let many = try await custody.recordLog((0..<3).map { LogEntry(traceId: "sdk-rpc-2", source: "agent-factory", operation: "op\($0)") })
            #expect(many.accepted == 3 && many.lastSeq == many.firstSeq + 2)
            let document = try await custody.getTrace("sdk-rpc-trace")
            // The critical path over RPC is the core's.
            let rpcPath = try await custody.criticalPath("sdk-rpc-2")
            let corePath = try await runtime.traces.criticalPath("sdk-rpc-2")
            #expect(rpcPath.path.map(\.seq) == corePath.steps.map(\.record.seq) && !rpcPath.path.isEmpty)
            #expect(rpcPath.path.map(\.selfMs) == corePath.steps.map { Double($0.selfNanoseconds) / 1_000_000 })
            #expect(rpcPath.durationMs == Double(corePath.durationNanoseconds) / 1_000_000 && rpcPath.traceId == "sdk-rpc-2")
            #expect(document.spans.contains { $0.operation == "one" && $0.details?["k"] == "v" })
            // The call itself is in the caller's trace (CustodyTrace.current went as metadata).
            let call = try await custody.getTrace("sdk-rpc-call")
            #expect(call.spans.contains { $0.stage == "request_received" && $0.operation == "custody.v1.LogOps/recordLog" })
            let replay = try await custody.replayTrace("sdk-rpc-2")
            #expect(replay.status == "completed" && replay.spans >= 3)
            do {
                _ = try await custody.updateTaskStatus(taskId: "nope", status: "complete")
                Issue.record("an unknown task was updated")
            } catch let error as CustodyClientError {
                #expect(error.status == 404 && error.code == "task_not_found")
            }
            do {
                _ = try await custody.createTask(orderId: "", payload: [:])
                Issue.record("an empty order id was taken")
            } catch let error as CustodyClientError {
                #expect(error.status == 422 && error.code == "invalid_argument" && error.field == "order_id")
            }
            do {
                _ = try await custody.createIssue(title: "x")
                Issue.record("GitHub without a token answered")
            } catch let error as CustodyClientError {
                #expect(error.code == "github_not_configured")
            }
            _ = runtime
        }
    }

    /// `details_json` is stored exactly as sent (an integer a Struct would round survives); it
    /// must be one JSON object, and not come with `details`.
    @Test func detailsAsJSONTextAreKeptAsSent() async throws {
        try await Self.withRPC { runtime, client, _ in
            let logs = Custody_V1_LogOps.Client(wrapping: client)
            var entry = Custody_V1_LogEntry()
            entry.traceID = "details-json"
            entry.detailsJson = #"{"big":9007199254740993,"nested":{"ok":true}}"#
            var request = Custody_V1_RecordLogRequest()
            request.entries = [entry]
            let recorded = try await logs.recordLog(request)
            let stored = try await spans(of: "details-json", in: runtime).first { $0.stage == "processing" && $0.source == "unknown" }
            #expect(stored?.details?.description == #"{"big":9007199254740993,"nested":{"ok":true}}"#)
            #expect(recorded.accepted == 1)
            for (text, problem) in [("[1,2]", "object"), ("{\"a\":", "JSON"), ("{}", "both")] {
                var bad = entry
                bad.detailsJson = text
                if problem == "both" { bad.details = try Self.structure("{}") }
                request.entries = [bad]
                await Self.expectError(.invalidArgument, code: "invalid_argument", field: "entries[0].details_json") {
                    _ = try await logs.recordLog(request)
                }
            }
        }
    }

    /// GitHubOps over gRPC against the fake GitHub: each method, `wait`, and the idempotency key.
    @Test func gitHubOperationsOverGRPC() async throws {
        let fake = try await FakeGitHub.start(token: GitHubTests.token)
        try await Self.withRPC(github: try GitHubTests.settings(fake)) { runtime, client, _ in
            let github = Custody_V1_GitHubOps.Client(wrapping: client)
            var file = Custody_V1_UpsertFileRequest()
            file.path = "docs/rpc.md"
            file.content = "over gRPC\n"
            file.message = "add"
            file.wait = true
            let written = try await github.upsertFile(file, metadata: ["x-trace-id": "rpc-github"])
            #expect(written.status == "succeeded" && written.kind == "upsert_file" && written.result.fields["created"]?.boolValue == true)
            #expect(fake.file("acme", "widgets", "docs/rpc.md") == "over gRPC\n")
            var pull = Custody_V1_OpenPRRequest()
            pull.title = "RPC"
            pull.head = "rpc"
            pull.base = "main"
            pull.idempotencyKey = "rpc-pr"
            let pending = try await github.openPR(pull)
            #expect(pending.status == "pending" && pending.idempotencyKey == "rpc-pr")
            pull.wait = true
            let opened = try await github.openPR(pull)
            #expect(opened.id == pending.id && opened.status == "succeeded" && opened.result.fields["number"]?.numberValue == 1)
            var issue = Custody_V1_CreateIssueRequest()
            issue.title = "From gRPC"
            issue.labels = ["rpc"]
            issue.wait = true
            let created = try await github.createIssue(issue)
            #expect(created.status == "succeeded" && created.params.fields["labels"]?.listValue.values.first?.stringValue == "rpc")
            var get = Custody_V1_GetOperationRequest()
            get.id = created.id
            #expect(try await github.getOperation(get).status == "succeeded")
            #expect(fake.pullCount == 1 && fake.issueCount == 1)
            #expect(try await spans(of: "rpc-github", in: runtime).contains { $0.stage == "outbound_call" })
        }
        await fake.stop()
    }

    /// Over the ingest bound, recordLog is RESOURCE_EXHAUSTED at once, with when to retry as
    /// google.rpc.RetryInfo in the status details and as `retry-after`.
    @Test func overloadIsResourceExhaustedWithRetryInfo() async throws {
        var limits = ServerLimits()
        limits.maximumConcurrentIngest = 0
        try await Self.withRPC(limits: limits) { runtime, client, _ in
            var request = Custody_V1_RecordLogRequest()
            request.entries = [Custody_V1_LogEntry()]
            do {
                _ = try await Custody_V1_LogOps.Client(wrapping: client).recordLog(request)
                Issue.record("an ingest over the bound was taken")
            } catch let error as RPCError {
                #expect(error.code == .resourceExhausted)
                #expect(error.metadata[stringValues: "custody-error-code"].first(where: { _ in true }) == "overloaded")
                #expect(error.metadata[stringValues: "retry-after"].first(where: { _ in true }) == "1")
                let status = try #require(try error.unpackGoogleRPCStatus())
                #expect(status.details.contains { $0.retryInfo?.delay == .seconds(1) })
            }
            _ = runtime
        }
    }

    /// Core errors map to gRPC statuses, with docs/api.md's code and the field; invalid requests append
    /// nothing; an unknown task is traced with an error span.
    @Test func errorsMapToStatusCodes() async throws {
        try await Self.withRPC { runtime, client, _ in
            let tasks = Custody_V1_TaskOps.Client(wrapping: client)
            let head = await runtime.log.lastSeq
            await Self.expectError(.invalidArgument, code: "invalid_argument", field: "order_id") {
                _ = try await tasks.createTask(Custody_V1_CreateTaskRequest())
            }
            var entries = Custody_V1_RecordLogRequest()
            var entry = Custody_V1_LogEntry()
            entry.durationMs = -1
            entries.entries = [entry]
            await Self.expectError(.invalidArgument, code: "invalid_argument", field: "entries[0].duration_ms") {
                _ = try await Custody_V1_LogOps.Client(wrapping: client).recordLog(entries)
            }
            #expect(await runtime.log.lastSeq == head, "an invalid request appended")

            var update = Custody_V1_UpdateTaskStatusRequest()
            update.taskID = "nope"
            update.status = "complete"
            await Self.expectError(.notFound, code: "task_not_found") {
                _ = try await tasks.updateTaskStatus(update, metadata: ["x-trace-id": "rpc-unknown-task"])
            }
            var create = Custody_V1_CreateTaskRequest()
            create.orderID = "o"
            create.payload = try Self.structure("{}")
            create.uuid = "fixed-uuid"
            _ = try await tasks.createTask(create)
            create.orderID = "other"
            await Self.expectError(.alreadyExists, code: "conflict") { _ = try await tasks.createTask(create) }
            var trace = Custody_V1_GetTraceRequest()
            trace.traceID = "never-seen"
            await Self.expectError(.notFound, code: "trace_not_found") {
                _ = try await Custody_V1_LogOps.Client(wrapping: client).getTrace(trace)
            }
            let unknown = try await spans(of: "rpc-unknown-task", in: runtime)
            #expect(unknown.map(\.stage) == ["request_received", "error"])
            #expect(unknown.first?.operation == "custody.v1.TaskOps/updateTaskStatus")
        }
    }

    /// `x-trace-id` or `traceparent` metadata joins a trace; the trace id comes back as response
    /// metadata; the call is recorded as request_received, processing and response_sent.
    @Test func callsJoinTheCallersTrace() async throws {
        try await Self.withRPC { runtime, client, _ in
            let tasks = Custody_V1_TaskOps.Client(wrapping: client)
            var create = Custody_V1_CreateTaskRequest()
            create.orderID = "o-trace"
            create.payload = try Self.structure("{}")
            let echoed = try await tasks.createTask(create, metadata: ["x-trace-id": "rpc-trace-1"]) { response in
                response.metadata[stringValues: "x-trace-id"].first(where: { _ in true })
            }
            #expect(echoed == "rpc-trace-1")
            let parentTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
            let fromParent = try await tasks.createTask(create, metadata: ["traceparent": "00-\(parentTrace)-00f067aa0ba902b7-01"]) { response in
                response.metadata[stringValues: "x-trace-id"].first(where: { _ in true })
            }
            #expect(fromParent == parentTrace)
            let generated = try await tasks.createTask(create, metadata: ["x-trace-id": "not valid!"]) { response in
                response.metadata[stringValues: "x-trace-id"].first(where: { _ in true })
            }
            #expect(generated != nil && generated != "not valid!")
            await runtime.context.responses.idle()
            let recorded = try await spans(of: "rpc-trace-1", in: runtime)
            #expect(recorded.map(\.stage) == ["request_received", "processing", "response_sent"])
            #expect(recorded.first?.operation == "custody.v1.TaskOps/createTask")
            #expect(try await spans(of: parentTrace, in: runtime).contains { $0.stage == "processing" && $0.operation == "createTask" })
        }
    }

    /// `since_seq` sends every matching span after it from the log, then live ones, with no gap
    /// and no duplicate; filters apply to both.
    @Test func theLiveStreamCatchesUpThenFollows() async throws {
        try await Self.withRPC { runtime, client, _ in
            let logs = Custody_V1_LogOps.Client(wrapping: client)
            @Sendable func record(_ operations: [String], source: String = "stream-test") async throws -> Custody_V1_RecordLogReply {
                var request = Custody_V1_RecordLogRequest()
                request.entries = operations.map { operation in
                    var entry = Custody_V1_LogEntry()
                    entry.traceID = "stream-\(operation)"
                    entry.source = source
                    entry.operation = operation
                    return entry
                }
                return try await logs.recordLog(request)
            }
            let before = try await record(["b0", "b1", "b2"])
            _ = try await record(["other"], source: "someone-else")
            var request = Custody_V1_LiveRequest()
            request.source = ["stream-test"]
            request.sinceSeq = before.firstSeq  // b1 and b2 come from the log; b0 is at the boundary, excluded
            let received = try await Custody_V1_TraceStream.Client(wrapping: client).live(request) { response in
                var operations: [String] = []
                var sentLive = false
                for try await message in response.messages {
                    guard case .trace(let span)? = message.event else { continue }
                    operations.append(span.operation)
                    if operations.count == 2 && !sentLive {
                        sentLive = true
                        _ = try await record(["l0", "l1"])
                    }
                    if operations.count == 4 { break }
                }
                return operations
            }
            #expect(received == ["b1", "b2", "l0", "l1"])
            _ = runtime
        }
    }

    /// A consumer that does not read falls behind: it is told how many spans it missed, and
    /// ingest is not held up meanwhile.
    @Test func aSlowConsumerIsToldWhatItMissed() async throws {
        var limits = ServerLimits()
        limits.liveClientBuffer = 8
        try await Self.withRPC(limits: limits) { runtime, client, _ in
            let logs = Custody_V1_LogOps.Client(wrapping: client)
            var request = Custody_V1_LiveRequest()
            request.source = ["flood"]
            let lagged = try await Custody_V1_TraceStream.Client(wrapping: client).live(request) { response in
                var iterator = response.messages.makeAsyncIterator()
                // Subscribed once the first message arrives: send one, read it, then flood while not reading.
                var first = Custody_V1_RecordLogRequest()
                var entry = Custody_V1_LogEntry()
                entry.source = "flood"
                first.entries = [entry]
                _ = try await logs.recordLog(first)
                _ = try await iterator.next()
                let started = ContinuousClock.now
                // 1,000 spans against a buffer of 8: enough to fall behind, light enough not to
                // slow the suite's other tests.
                for _ in 0..<2 {
                    var batch = Custody_V1_RecordLogRequest()
                    batch.entries = Array(repeating: entry, count: 500)
                    _ = try await logs.recordLog(batch)
                }
                let floodTime = ContinuousClock.now - started
                var dropped: UInt64 = 0
                while let message = try await iterator.next() {
                    if case .lagged(let notice)? = message.event {
                        dropped = notice.dropped
                        break
                    }
                }
                return (dropped, floodTime)
            }
            #expect(lagged.0 > 0)
            #expect(lagged.1 < .seconds(30))
            _ = runtime
        }
    }

    /// With bearer tokens set, a call without one is UNAUTHENTICATED and an ingest token cannot
    /// create tasks (PERMISSION_DENIED), but can record logs.
    @Test func tokensAreRequiredWhenConfigured() async throws {
        try await Self.withRPC(tokens: ["ingest-secret": .ingest, "operator-secret": .operator]) { runtime, client, _ in
            let tasks = Custody_V1_TaskOps.Client(wrapping: client)
            var create = Custody_V1_CreateTaskRequest()
            create.orderID = "o"
            create.payload = try Self.structure("{}")
            await Self.expectError(.unauthenticated, code: "unauthorized") { _ = try await tasks.createTask(create) }
            await Self.expectError(.permissionDenied, code: "forbidden") {
                _ = try await tasks.createTask(create, metadata: ["authorization": "Bearer ingest-secret"])
            }
            let allowed = try await tasks.createTask(create, metadata: ["authorization": "Bearer operator-secret"])
            #expect(allowed.created)
            var record = Custody_V1_RecordLogRequest()
            record.entries = [Custody_V1_LogEntry()]
            let ingested = try await Custody_V1_LogOps.Client(wrapping: client).recordLog(record, metadata: ["authorization": "Bearer ingest-secret"])
            #expect(ingested.accepted == 1)
            _ = runtime
        }
    }
}
