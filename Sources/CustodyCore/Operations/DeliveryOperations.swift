import CustodyLog

/// A follow-up as the API returns it.
public struct FollowupRecord: Sendable, Hashable {
    public var id: String
    public var orderId: String
    public var type: String
    public var note: String
    public var impact: FollowupImpact
    public var createdAt: Int64
    public var seq: UInt64

    public var jsonValue: JSONValue {
        .object([
            "id": .string(id), "order_id": .string(orderId), "type": .string(type), "note": .string(note), "impact": .string(impact.rawValue),
            "created_at": .string(RFC3339.format(createdAt)),
        ])
    }
}

/// DeliveryOps (docs/api.md "Delivery"): follow-ups and delivery reports.
///
/// A report is computed from one snapshot of the projections (one log position). Finalizing
/// again with nothing new for the order returns the same revision; anything new — a task, a
/// status change, a follow-up, a factory error, a span of one of its tasks — makes the next one.
public struct DeliveryOperations: Sendable {
    let context: CoreContext

    public init(context: CoreContext) { self.context = context }

    /// submitOpsFollowup.
    public func submitOpsFollowup(
        orderId: String?,
        type: String?,
        note: String?,
        impact: String?,
        request: RequestTrace
    ) async throws(CoreError)
        -> FollowupRecord
    {
        let started = ContinuousClock.now
        let orderId = try FieldRules.identifier(orderId, "order_id")
        let type = try FieldRules.identifier(type, "type", maximum: 64)
        let note = try FieldRules.text(note, "note", maximum: 16 << 10)
        guard let impact else { throw CoreError.invalidArgument("impact", "is required") }
        guard let level = FollowupImpact(rawValue: impact) else {
            throw CoreError.invalidArgument("impact", "must be one of low, medium, high, critical")
        }
        let event = FollowupSubmitted(id: context.newIdentifier(), orderId: orderId, type: type, note: note, impact: level)
        let receipt = try await context.append(
            [.followupSubmitted(event)],
            operation: "submitOpsFollowup",
            request: request,
            started: started,
            details: .object(["followup_id": .string(event.id)])
        )
        return FollowupRecord(
            id: event.id,
            orderId: orderId,
            type: type,
            note: note,
            impact: level,
            createdAt: receipt.timestamp,
            seq: receipt.firstSeq
        )
    }

    /// fetchFollowups: an order's follow-ups in the order they were submitted; with `asOf`, as
    /// they stood then (follow-ups never change, so those with a seq up to that position).
    public func fetchFollowups(orderId: String, asOf: AsOf? = nil) async throws(CoreError) -> [FollowupRecord] {
        let orderId = try FieldRules.identifier(orderId, "order_id")
        try await context.awaitProjections()
        var bound = UInt64(Int64.max)
        if let asOf { bound = try await context.resolve(asOf) }
        do {
            return try await context.store.followups(orderId: orderId, throughSeq: bound)
        } catch {
            throw CoreError.internal("reading follow-ups failed", error)
        }
    }

    /// finalizeDeliveryReport: the report of an order, as a new revision when anything about the
    /// order changed since the last one; `not_found` for an order with no task and no follow-up.
    public func finalizeDeliveryReport(orderId: String, request: RequestTrace) async throws(CoreError) -> JSONValue {
        let started = ContinuousClock.now
        let orderId = try FieldRules.identifier(orderId, "order_id")
        await context.orders.acquire(orderId)
        defer { context.orders.release(orderId) }
        let (report, receipt) = try await context.retryingFenced { () throws(CoreError) -> (JSONValue, AppendReceipt?) in
            try await context.awaitProjections()
            let snapshot: ReportSnapshot
            do {
                snapshot = ReportSnapshot(orderId: orderId, activity: try await context.store.orderActivity(orderId: orderId))
            } catch {
                throw CoreError.internal("reading the order failed", error)
            }
            guard snapshot.taskCount > 0 || !snapshot.followups.isEmpty else {
                let error = CoreError(.notFound, "there is no order \(orderId)")
                await context.appendErrorSpan(operation: "finalizeDeliveryReport", request: request, error: error)
                throw error
            }
            if let previous = snapshot.previous, previous.lastEventSeq == snapshot.lastEventSeq {
                return (previous.report, nil)
            }
            let revision = (snapshot.previous?.revision ?? 0) + 1
            let report = snapshot.report(revision: revision, finalizedAt: context.now())
            let receipt = try await context.append(
                [.deliveryFinalized(DeliveryFinalized(orderId: orderId, revision: UInt64(revision), report: report.jsonText))],
                operation: "finalizeDeliveryReport",
                request: request,
                started: started,
                details: .object(["order_id": .string(orderId), "revision": .integer(revision)]),
                // Revisions follow each other across nodes: the write names the report it follows.
                fence: AppendFence(key: "order:" + orderId, lastSeq: UInt64(snapshot.previous?.seq ?? 0))
            )
            return (report, receipt)
        }
        // The next finalize of this order must see this revision.
        if let receipt { try await context.projector.waitUntilApplied(receipt.lastSeq, timeout: context.readTimeout) }
        return report
    }

    /// getReport: the latest revision, or `not_found`.
    public func getReport(orderId: String) async throws(CoreError) -> JSONValue {
        let orderId = try FieldRules.identifier(orderId, "order_id")
        try await context.awaitProjections()
        let text: JSONText?
        do {
            text = try await context.store.latestReport(orderId: orderId)
        } catch {
            throw CoreError.internal("reading the report failed", error)
        }
        guard let text else { throw CoreError(.notFound, "order \(orderId) has no report") }
        return text.jsonValue
    }
}

/// Everything a report needs, read in one transaction (one log position).
struct ReportSnapshot {
    var orderId: String
    var taskCount: Int
    var tasksByStatus: [String: Int]
    var taskList: [JSONValue]
    var followups: [FollowupRecord]
    var errors: Int
    var traces: Int
    var spans: Int
    var errorSpans: Int
    var firstEventAt: Int64?
    var lastEventAt: Int64?
    /// The highest seq of anything about the order: a report changes only when this does.
    var lastEventSeq: Int64
    /// The latest report: its revision, its JSON, the highest seq it covered and the seq of its
    /// own event.
    var previous: (revision: Int64, report: JSONValue, lastEventSeq: Int64, seq: Int64)?

    /// The report's figures from what the store read about the order.
    init(orderId: String, activity: OrderActivity) {
        self.orderId = orderId
        let tasks = activity.tasks
        taskCount = tasks.count
        tasksByStatus = Dictionary(grouping: tasks, by: { $0.status.rawValue }).mapValues(\.count)
        taskList = tasks.map(\.jsonValue)
        followups = activity.followups
        errors = activity.errors.count
        spans = activity.spans.count
        traces = activity.spans.traces
        errorSpans = activity.spans.errors
        var seqs: [Int64] = tasks.map { Int64($0.lastSeq) }
        seqs += followups.map { Int64($0.seq) }
        for value in [activity.errors.lastSeq, activity.spans.lastSeq] { if let value { seqs.append(value) } }
        lastEventSeq = seqs.max() ?? 0
        var times: [Int64] = tasks.map(\.createdAt)
        times += tasks.map(\.updatedAt)
        times += followups.map(\.createdAt)
        for value in [activity.errors.firstAt, activity.errors.lastAt, activity.spans.firstAt, activity.spans.lastAt] {
            if let value { times.append(value) }
        }
        firstEventAt = times.min()
        lastEventAt = times.max()
        if let latest = activity.latestReport {
            let report = latest.report.jsonValue
            let marker: Int64 = if case .integer(let value)? = report.objectValue?["last_event_seq"] { value } else { -1 }
            previous = (latest.revision, report, marker, latest.seq)
        }
    }

    func report(revision: Int64, finalizedAt: Int64) -> JSONValue {
        .object([
            "order_id": .string(orderId), "revision": .integer(revision), "finalized_at": .string(RFC3339.format(finalizedAt)),
            "tasks": .object(tasksByStatus.mapValues { .integer(Int64($0)) }), "task_list": .array(taskList), "errors": .integer(Int64(errors)),
            "followups": .array(followups.map(\.jsonValue)), "traces": .integer(Int64(traces)), "spans": .integer(Int64(spans)),
            "error_spans": .integer(Int64(errorSpans)), "first_event_at": firstEventAt.map { .string(RFC3339.format($0)) } ?? .null,
            "last_event_at": lastEventAt.map { .string(RFC3339.format($0)) } ?? .null, "last_event_seq": .integer(lastEventSeq),
        ])
    }
}
