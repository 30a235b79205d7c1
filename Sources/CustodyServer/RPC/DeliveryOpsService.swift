import CustodyCore
import CustodyRPC
import GRPCCore

/// DeliveryOps over gRPC: decode → the core function the HTTP route calls → encode.
struct DeliveryOpsService: Custody_V1_DeliveryOps.SimpleServiceProtocol {
    let runtime: CoreRuntime

    func submitOpsFollowup(request: Custody_V1_SubmitOpsFollowupRequest, context: ServerContext) async throws -> Custody_V1_Followup {
        let followup = try await runtime.delivery.submitOpsFollowup(
            orderId: request.orderID.nonEmpty,
            type: request.type.nonEmpty,
            note: request.note.nonEmpty,
            impact: request.impact.nonEmpty,
            request: RPCRequestTrace.request
        )
        return try ProtobufJSON.message(Custody_V1_Followup.self, from: followup.jsonValue)
    }

    func fetchFollowups(request: Custody_V1_FetchFollowupsRequest, context: ServerContext) async throws -> Custody_V1_FollowupList {
        let asOf = request.hasAsOf ? try AsOf(parsing: request.asOf) : nil
        let followups = try await runtime.delivery.fetchFollowups(orderId: request.orderID, asOf: asOf)
        var reply = Custody_V1_FollowupList()
        reply.followups = try followups.map { try ProtobufJSON.message(Custody_V1_Followup.self, from: $0.jsonValue) }
        return reply
    }

    func finalizeDeliveryReport(
        request: Custody_V1_FinalizeDeliveryReportRequest,
        context: ServerContext
    ) async throws -> Custody_V1_DeliveryReport {
        let report = try await runtime.delivery.finalizeDeliveryReport(orderId: request.orderID, request: RPCRequestTrace.request)
        var reply = Custody_V1_DeliveryReport()
        reply.report = try ProtobufJSON.structure(report)
        return reply
    }
}
