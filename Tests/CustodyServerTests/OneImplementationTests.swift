import CustodyCore
import CustodyLog
import CustodyRPC
import CustodyServer
import CustodyServerTesting
import Foundation
import GRDB
import GRPCCore
import GRPCNIOTransportHTTP2
import GRPCProtobuf
import HTTPTypes
import HummingbirdTesting
import SwiftProtobuf
import Testing

/// There is one implementation of every operation: the same sequence of calls over HTTP and over
/// gRPC leaves the same projections, row for row, once what is new per call (generated ids,
/// timestamps, log positions, durations) is set aside — and the request spans' operation, which
/// names the route (`POST /api/tasks`) or the method (`custody.v1.TaskOps/createTask`).
@Suite(.timeLimit(.minutes(2))) struct OneImplementationTests {
    static let traceHeader = HTTPField.Name("x-trace-id")!

    /// The rows that must match, with the per-call parts left out.
    static func rows(_ runtime: CoreRuntime) async throws -> [String: [[String]]] {
        // Each call's response_sent is appended as its answer goes out (not waited for): wait for
        // them, then for the projections to hold them.
        await runtime.context.responses.idle()
        try await runtime.projector.waitUntilApplied(await runtime.log.lastSeq)
        return try await runtime.sqliteStore.read { db in
            func fetch(_ sql: String) throws -> [[String]] {
                try Row.fetchAll(db, sql: sql).map { row in row.databaseValues.map(\.description) }
            }
            let reports = try String.fetchAll(db, sql: "SELECT report FROM delivery_reports ORDER BY order_id, revision").map { text in
                // The report less its timestamps and generated ids.
                var report = try JSONSerialization.jsonObject(with: Data(text.utf8)) as! [String: Any]
                for key in ["finalized_at", "first_event_at", "last_event_at"] { report[key] = nil }
                report["followups"] = (report["followups"] as? [[String: Any]])?.map { $0.filter { $0.key != "id" && $0.key != "created_at" } }
                report["task_list"] = (report["task_list"] as? [[String: Any]])?.map {
                    $0.filter { !$0.key.hasSuffix("_at") && $0.key != "last_seq" }
                }
                return [String(decoding: try JSONSerialization.data(withJSONObject: report, options: [.sortedKeys]), as: UTF8.self)]
            }
            return [
                "tasks": try fetch("SELECT uuid, order_id, status, payload FROM tasks ORDER BY uuid"),
                "followups": try fetch("SELECT order_id, type, note, impact FROM followups ORDER BY seq"),
                "error_events": try fetch("SELECT source, message, order_id, task_uuid, error_type, payload FROM error_events ORDER BY seq"),
                "operation_logs": try fetch(
                    """
                    SELECT trace_id, span_id, parent_span_id, source, stage,
                        CASE WHEN stage IN ('request_received', 'response_sent', 'error') THEN '(request)' ELSE operation END,
                        task_uuid, CASE WHEN source = 'orchestrator' THEN NULL ELSE duration_ms END,
                        CASE WHEN source = 'orchestrator' THEN NULL ELSE timestamp END, is_error
                    FROM operation_logs ORDER BY trace_id, seq
                    """
                ),
                "delivery_reports": reports,
                "trace_summaries": try fetch("SELECT trace_id, span_count, error_count, sources FROM trace_summaries ORDER BY trace_id"),
            ]
        }
    }

    static let payload = #"{"kind":"agent","size":3}"#
    static let spans = [
        (span: "a", operation: "createAgent", stage: "before_rpc", duration: 40.0, timestamp: "2026-11-03T21:00:00.123Z"),
        (span: "b", operation: "loadRows", stage: "after_rpc", duration: 25.5, timestamp: "2026-11-03T21:00:00.200Z"),
    ]

    @Test func httpAndRPCLeaveTheSameProjections() async throws {
        let overHTTP = try await ServerFixture.run { runtime, client in
            func post(_ path: String, _ body: String, trace: String) async throws {
                let answer = try await client.call(.post, path, json: body, headers: [Self.traceHeader: trace])
                try #require(answer.ok, "\(path): \(answer.json)")
                // Each request's closing span in the log before the next request (the recorder
                // lingers to share appends), so that both runs number their events alike.
                await runtime.context.responses.idle()
            }
            try await post("/api/tasks", #"{"order_id":"o-1","uuid":"t-1","payload":\#(Self.payload)}"#, trace: "step-1")
            try await post("/api/tasks/updateStatus", #"{"task_id":"t-1","status":"in_progress"}"#, trace: "step-2")
            try await post(
                "/api/tasks/errors",
                #"{"source":"data-factory","message":"disk full","order_id":"o-1","task_uuid":"t-1","error_type":"io","payload":{"disk":"/d"}}"#,
                trace: "step-3"
            )
            try await post("/api/delivery/o-1/followups", #"{"type":"review","note":"check it","impact":"high"}"#, trace: "step-4")
            let entries = Self.spans.map { span in
                #"{"trace_id":"flow-1","span_id":"\#(span.span)","parent_span_id":null,"source":"agent-factory","stage":"\#(span.stage)","operation":"\#(span.operation)","task_uuid":"t-1","duration_ms":\#(span.duration),"timestamp":"\#(span.timestamp)","details":{"ok":true}}"#
            }
            try await post("/api/logs", "[" + entries.joined(separator: ",") + "]", trace: "step-5")
            try await post("/api/delivery/o-1/finalize", "", trace: "step-6")
            return try await Self.rows(runtime)
        }
        let overRPC = try await RPCTests.withRPC { runtime, client, _ in
            let tasks = Custody_V1_TaskOps.Client(wrapping: client)
            var create = Custody_V1_CreateTaskRequest()
            create.orderID = "o-1"
            create.uuid = "t-1"
            create.payload = try Google_Protobuf_Struct(jsonString: Self.payload)
            _ = try await tasks.createTask(create, metadata: ["x-trace-id": "step-1"])
            await runtime.context.responses.idle()
            var update = Custody_V1_UpdateTaskStatusRequest()
            update.taskID = "t-1"
            update.status = "in_progress"
            _ = try await tasks.updateTaskStatus(update, metadata: ["x-trace-id": "step-2"])
            await runtime.context.responses.idle()
            var failure = Custody_V1_RecordFactoryErrorRequest()
            failure.source = "data-factory"
            failure.message = "disk full"
            failure.orderID = "o-1"
            failure.taskUuid = "t-1"
            failure.errorType = "io"
            failure.payload = try Google_Protobuf_Struct(jsonString: #"{"disk":"/d"}"#)
            _ = try await tasks.recordFactoryError(failure, metadata: ["x-trace-id": "step-3"])
            await runtime.context.responses.idle()
            let delivery = Custody_V1_DeliveryOps.Client(wrapping: client)
            var followup = Custody_V1_SubmitOpsFollowupRequest()
            followup.orderID = "o-1"
            followup.type = "review"
            followup.note = "check it"
            followup.impact = "high"
            _ = try await delivery.submitOpsFollowup(followup, metadata: ["x-trace-id": "step-4"])
            await runtime.context.responses.idle()
            var record = Custody_V1_RecordLogRequest()
            record.entries = try Self.spans.map { span in
                var entry = Custody_V1_LogEntry()
                entry.traceID = "flow-1"
                entry.spanID = span.span
                entry.source = "agent-factory"
                entry.stage = span.stage
                entry.operation = span.operation
                entry.taskUuid = "t-1"
                entry.durationMs = span.duration
                entry.timestamp = span.timestamp
                entry.details = try Google_Protobuf_Struct(jsonString: #"{"ok":true}"#)
                return entry
            }
            _ = try await Custody_V1_LogOps.Client(wrapping: client).recordLog(record, metadata: ["x-trace-id": "step-5"])
            await runtime.context.responses.idle()
            var finalize = Custody_V1_FinalizeDeliveryReportRequest()
            finalize.orderID = "o-1"
            _ = try await delivery.finalizeDeliveryReport(finalize, metadata: ["x-trace-id": "step-6"])
            await runtime.context.responses.idle()
            return try await Self.rows(runtime)
        }
        #expect(overHTTP.keys.sorted() == overRPC.keys.sorted())
        for table in overHTTP.keys.sorted() {
            #expect(overHTTP[table] == overRPC[table], "\(table) differs")
            #expect(!(overHTTP[table] ?? []).isEmpty, "\(table) is empty: the comparison proves nothing")
        }
    }
}
