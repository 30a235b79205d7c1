import CustodyLog

/// A task as the API returns it.
public struct TaskRecord: Sendable, Hashable {
    public var uuid: String
    public var orderId: String
    public var status: TaskStatus
    public var payload: JSONText
    public var createdAt: Int64
    public var updatedAt: Int64
    public var lastSeq: UInt64
    /// The seq of the task's `task.created` event (list order and cursor).
    public var createdSeq: UInt64

    public var jsonValue: JSONValue {
        .object([
            "uuid": .string(uuid), "order_id": .string(orderId), "status": .string(status.rawValue), "payload": payload.jsonValue,
            "created_at": .string(RFC3339.format(createdAt)), "updated_at": .string(RFC3339.format(updatedAt)),
            "last_seq": .integer(Int64(lastSeq)),
        ])
    }
}

/// TaskOps (docs/api.md "Tasks"): one function per operation, shared by the HTTP routes and RPC.
///
/// Guarantees: updates of one task are serialized, and each reads the task only after the
/// projections hold every earlier write, so concurrent updates each get the right
/// `previous_status`; an update of an unknown task appends only an `error` span. Across the
/// nodes of a cluster the same holds through fences (``AppendFence``, key `task:<uuid>`): a
/// create or update appends only if no other write to the task came after the one it read, and
/// is read and tried again otherwise (``CoreContext/retryingFenced(_:)``).
public struct TaskOperations: Sendable {
    let context: CoreContext

    public init(context: CoreContext) { self.context = context }

    public struct Created: Sendable, Hashable {
        public var task: TaskRecord
        /// False when a task with the same uuid and content already existed (idempotent retry).
        public var created: Bool
    }

    /// createTask: `uuid` optional (made when absent). An existing uuid with equal content returns
    /// the existing task; with other content, `conflict`.
    public func createTask(orderId: String?, payload: JSONValue?, uuid: String?, request: RequestTrace) async throws(CoreError) -> Created {
        let started = ContinuousClock.now
        let orderId = try FieldRules.identifier(orderId, "order_id")
        let payload = try FieldRules.object(payload, "payload")!
        let uuid = try uuid.map { value throws(CoreError) in try FieldRules.identifier(value, "uuid") } ?? context.newIdentifier()
        await context.tasks.acquire(uuid)
        defer { context.tasks.release(uuid) }
        let written = try await context.retryingFenced { () throws(CoreError) -> AppendReceipt? in
            try await context.awaitProjections()
            if try await task(uuid) != nil { return nil }
            return try await context.append(
                [.taskCreated(TaskCreated(uuid: uuid, orderId: orderId, payload: payload))],
                operation: "createTask",
                request: request,
                started: started,
                details: .object(["task_uuid": .string(uuid)]),
                fence: Self.fence(uuid, lastSeq: 0)
            )
        }
        guard let receipt = written else {
            guard let existing = try await task(uuid) else { throw CoreError(.internalError, "task \(uuid) was read and is gone") }
            guard existing.orderId == orderId, existing.payload.jsonValue == payload.jsonValue else {
                throw CoreError(.conflict, "task \(uuid) already exists with other content", field: "uuid")
            }
            return Created(task: existing, created: false)
        }
        return Created(
            task: TaskRecord(
                uuid: uuid,
                orderId: orderId,
                status: .pending,
                payload: payload,
                createdAt: receipt.timestamp,
                updatedAt: receipt.timestamp,
                lastSeq: receipt.firstSeq,
                createdSeq: receipt.firstSeq
            ),
            created: true
        )
    }

    public struct StatusChange: Sendable, Hashable {
        public var taskId: String
        public var status: TaskStatus
        public var previousStatus: TaskStatus
    }

    /// updateTaskStatus.
    public func updateTaskStatus(taskId: String?, status: String?, request: RequestTrace) async throws(CoreError) -> StatusChange {
        let started = ContinuousClock.now
        let taskId = try FieldRules.identifier(taskId, "task_id")
        guard let status else { throw CoreError.invalidArgument("status", "is required") }
        guard let newStatus = TaskStatus(rawValue: status) else {
            throw CoreError.invalidArgument("status", "must be one of \(TaskStatus.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        await context.tasks.acquire(taskId)
        defer { context.tasks.release(taskId) }
        let (receipt, previous) = try await context.retryingFenced { () throws(CoreError) -> (AppendReceipt, TaskStatus) in
            try await context.awaitProjections()
            guard let current = try await task(taskId) else {
                let error = CoreError(.taskNotFound, "there is no task \(taskId)", field: "task_id")
                await context.appendErrorSpan(operation: "updateTaskStatus", request: request, error: error)
                throw error
            }
            let change = TaskStatusChanged(uuid: taskId, status: newStatus, previousStatus: current.status)
            let receipt = try await context.append(
                [.taskStatusChanged(change)],
                operation: "updateTaskStatus",
                request: request,
                started: started,
                details: .object(["task_uuid": .string(taskId), "status": .string(newStatus.rawValue)]),
                fence: Self.fence(taskId, lastSeq: current.lastSeq)
            )
            return (receipt, current.status)
        }
        // The next update of this task waits for the projections to reach this write.
        try await context.projector.waitUntilApplied(receipt.lastSeq, timeout: context.readTimeout)
        return StatusChange(taskId: taskId, status: newStatus, previousStatus: previous)
    }

    /// The fence of a write to task `uuid`: the task's last event (`task.created` or
    /// `task.status_changed`, whose seq the task's `last_seq` is) was appended under it.
    static func fence(_ uuid: String, lastSeq: UInt64) -> AppendFence {
        AppendFence(key: "task:" + uuid, lastSeq: lastSeq)
    }

    /// recordFactoryError: returns the new error's id.
    public func recordFactoryError(
        source: String?,
        message: String?,
        orderId: String?,
        taskUUID: String?,
        errorType: String?,
        payload: JSONValue?,
        request: RequestTrace
    ) async throws(CoreError) -> String {
        let started = ContinuousClock.now
        let event = FactoryErrorRecorded(
            errorId: context.newIdentifier(),
            source: try FieldRules.identifier(source, "source", maximum: 64),
            message: try FieldRules.text(message, "message", maximum: 16 << 10),
            orderId: try orderId.map { value throws(CoreError) in try FieldRules.identifier(value, "order_id") },
            taskUUID: try taskUUID.map { value throws(CoreError) in try FieldRules.identifier(value, "task_uuid") },
            errorType: try errorType.map { value throws(CoreError) in try FieldRules.identifier(value, "error_type") },
            payload: try FieldRules.object(payload, "payload", required: false)
        )
        _ = try await context.append(
            [.factoryErrorRecorded(event)],
            operation: "recordFactoryError",
            request: request,
            started: started,
            details: .object(["error_id": .string(event.errorId)])
        )
        return event.errorId
    }

    /// getTask: the task now (after every earlier write), or `task_not_found`.
    public func getTask(_ uuid: String) async throws(CoreError) -> TaskRecord {
        try await context.awaitProjections()
        guard let task = try await task(uuid) else { throw CoreError(.taskNotFound, "there is no task \(uuid)") }
        return task
    }

    /// listTasks: by order and/or status, oldest first, `limit` at a time; `cursor` continues.
    public func listTasks(
        orderId: String?,
        status: String?,
        limit: Int = 100,
        cursor: String?
    ) async throws(CoreError) -> (tasks: [TaskRecord], nextCursor: String?) {
        guard (1...1000).contains(limit) else { throw CoreError.invalidArgument("limit", "must be 1–1000") }
        if let status, TaskStatus(rawValue: status) == nil { throw CoreError.invalidArgument("status", "is not a task status") }
        let after: Int64
        if let cursor {
            guard let value = Int64(cursor), value >= 0 else { throw CoreError.invalidArgument("cursor", "is not a cursor this API returned") }
            after = value
        } else {
            after = 0
        }
        try await context.awaitProjections()
        let tasks: [TaskRecord]
        do {
            tasks = try await context.store.tasks(
                orderId: orderId,
                status: status.flatMap(TaskStatus.init(rawValue:)),
                afterCreatedSeq: UInt64(after),
                limit: limit + 1
            )
        } catch {
            throw CoreError.internal("reading tasks failed", error)
        }
        let page = Array(tasks.prefix(limit))
        let next = tasks.count > limit ? page.last.map { String($0.createdSeq) } : nil
        return (page, next)
    }

    func task(_ uuid: String) async throws(CoreError) -> TaskRecord? {
        do {
            return try await context.store.task(uuid: uuid)
        } catch {
            throw CoreError.internal("reading task \(uuid) failed", error)
        }
    }
}
