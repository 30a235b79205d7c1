import CustodyCore
import Hummingbird

/// TaskOps over HTTP (docs/api.md "Tasks"): decode → the shared core function → encode.
struct TaskRoutes {
    let runtime: CoreRuntime
    let limits: ServerLimits

    func register(on router: Router<CustodyRequestContext>) {
        let tasks = runtime.tasks
        router.traced("/api/tasks", method: .post, runtime: runtime) { request, context, trace in
            let body = try await JSONBody.decode(CreateTaskBody.self, from: request, context: context, limits: limits)
            let created = try await tasks.createTask(orderId: body.orderId, payload: body.payload, uuid: body.uuid, request: trace)
            return APIEnvelope.written(.object(["task": created.task.jsonValue]), status: created.created ? .created : .ok, trace: trace)
        }
        router.traced("/api/tasks/updateStatus", method: .post, runtime: runtime) { request, context, trace in
            let body = try await JSONBody.decode(UpdateStatusBody.self, from: request, context: context, limits: limits)
            let change = try await tasks.updateTaskStatus(taskId: body.taskId, status: body.status, request: trace)
            return APIEnvelope.written(
                .object([
                    "task_id": .string(change.taskId), "status": .string(change.status.rawValue),
                    "previous_status": .string(change.previousStatus.rawValue),
                ]),
                trace: trace
            )
        }
        router.traced("/api/tasks/errors", method: .post, runtime: runtime) { request, context, trace in
            let body = try await JSONBody.decode(FactoryErrorBody.self, from: request, context: context, limits: limits)
            let errorId = try await tasks.recordFactoryError(
                source: body.source,
                message: body.message,
                orderId: body.orderId,
                taskUUID: body.taskUUID,
                errorType: body.errorType,
                payload: body.payload,
                request: trace
            )
            return APIEnvelope.written(.object(["error_id": .string(errorId)]), status: .created, trace: trace)
        }
        router.traced("/api/tasks/{uuid}", method: .get, runtime: runtime) { request, context, trace in
            let uuid = try context.pathValue("uuid")
            if let asOf = request.text("as_of") {
                let (task, seq) = try await tasks.getTask(uuid, asOf: try AsOf(parsing: asOf))
                return APIEnvelope.ok(.object(["task": task.jsonValue, "as_of_seq": .integer(Int64(seq))]))
            }
            return APIEnvelope.ok(.object(["task": try await tasks.getTask(uuid).jsonValue]))
        }
        router.traced("/api/tasks", method: .get, runtime: runtime) { request, context, trace in
            let page = try await tasks.listTasks(
                orderId: request.text("order_id"),
                status: request.text("status"),
                limit: try QueryValues.integer(request.query("limit"), "limit") ?? 100,
                cursor: request.text("cursor")
            )
            return APIEnvelope.ok(
                .object(["tasks": .array(page.tasks.map(\.jsonValue)), "next_cursor": page.nextCursor.map(JSONValue.string) ?? .null])
            )
        }
    }
}

extension Request {
    /// A query parameter's value as sent (an empty one included: `?limit=` is not a limit).
    func query(_ name: Substring) -> String? {
        uri.queryParameters[name].map { String($0) }
    }

    /// A free-text query parameter (a filter, a cursor, `as_of`): an empty one counts as absent.
    func text(_ name: Substring) -> String? {
        guard let value = uri.queryParameters[name], !value.isEmpty else { return nil }
        return String(value)
    }
}
