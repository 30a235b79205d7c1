import CustodyCore
import Hummingbird

/// DeliveryOps over HTTP (docs/api.md "Delivery"): decode → the shared core function → encode.
struct DeliveryRoutes {
    let runtime: CoreRuntime
    let limits: ServerLimits

    func register(on router: Router<CustodyRequestContext>) {
        let delivery = runtime.delivery
        router.traced("/api/delivery/{order_id}/followups", method: .post, runtime: runtime) { request, context, trace in
            let orderId = try context.pathValue("order_id")
            let body = try await JSONBody.decode(FollowupBody.self, from: request, context: context, limits: limits)
            let followup = try await delivery.submitOpsFollowup(
                orderId: orderId,
                type: body.type,
                note: body.note,
                impact: body.impact,
                request: trace
            )
            return APIEnvelope.written(.object(["followup": followup.jsonValue]), status: .created, trace: trace)
        }
        router.traced("/api/delivery/{order_id}/followups", method: .get, runtime: runtime) { request, context, trace in
            let orderId = try context.pathValue("order_id")
            let asOf = try request.text("as_of").map { text throws(CoreError) in try AsOf(parsing: text) }
            let followups = try await delivery.fetchFollowups(orderId: orderId, asOf: asOf)
            return APIEnvelope.ok(.object(["followups": .array(followups.map(\.jsonValue))]))
        }
        router.traced("/api/delivery/{order_id}/finalize", method: .post, runtime: runtime) { request, context, trace in
            let orderId = try context.pathValue("order_id")
            let report = try await delivery.finalizeDeliveryReport(orderId: orderId, request: trace)
            return APIEnvelope.written(.object(["report": report]), trace: trace)
        }
        router.traced("/api/delivery/{order_id}/report", method: .get, runtime: runtime) { request, context, trace in
            let orderId = try context.pathValue("order_id")
            return APIEnvelope.ok(.object(["report": try await delivery.getReport(orderId: orderId)]))
        }
    }
}
