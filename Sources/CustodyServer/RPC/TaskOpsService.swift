import CustodyCore
import CustodyRPC
import GRPCCore

/// TaskOps over gRPC: decode → the core function the HTTP route calls → encode.
struct TaskOpsService: Custody_V1_TaskOps.SimpleServiceProtocol {
    let runtime: CoreRuntime

    func createTask(request: Custody_V1_CreateTaskRequest, context: ServerContext) async throws -> Custody_V1_TaskReply {
        let created = try await runtime.tasks.createTask(
            orderId: request.orderID.nonEmpty,
            payload: try ProtobufJSON.json(request.hasPayload ? request.payload : nil, "payload"),
            uuid: request.hasUuid ? request.uuid : nil,
            request: RPCRequestTrace.request
        )
        var reply = Custody_V1_TaskReply()
        reply.task = try ProtobufJSON.message(Custody_V1_Task.self, from: created.task.jsonValue)
        reply.created = created.created
        return reply
    }

    func updateTaskStatus(request: Custody_V1_UpdateTaskStatusRequest, context: ServerContext) async throws -> Custody_V1_StatusChange {
        let change = try await runtime.tasks.updateTaskStatus(
            taskId: request.taskID.nonEmpty,
            status: request.status.nonEmpty,
            request: RPCRequestTrace.request
        )
        var reply = Custody_V1_StatusChange()
        reply.taskID = change.taskId
        reply.status = change.status.rawValue
        reply.previousStatus = change.previousStatus.rawValue
        return reply
    }

    func recordFactoryError(
        request: Custody_V1_RecordFactoryErrorRequest,
        context: ServerContext
    ) async throws -> Custody_V1_RecordFactoryErrorReply {
        let errorId = try await runtime.tasks.recordFactoryError(
            source: request.source.nonEmpty,
            message: request.message.nonEmpty,
            orderId: request.hasOrderID ? request.orderID : nil,
            taskUUID: request.hasTaskUuid ? request.taskUuid : nil,
            errorType: request.hasErrorType ? request.errorType : nil,
            payload: try ProtobufJSON.json(request.hasPayload ? request.payload : nil, "payload"),
            request: RPCRequestTrace.request
        )
        var reply = Custody_V1_RecordFactoryErrorReply()
        reply.errorID = errorId
        return reply
    }

    func getTask(request: Custody_V1_GetTaskRequest, context: ServerContext) async throws -> Custody_V1_TaskReply {
        var reply = Custody_V1_TaskReply()
        if request.hasAsOf {
            let (task, seq) = try await runtime.tasks.getTask(request.uuid, asOf: try AsOf(parsing: request.asOf))
            reply.task = try ProtobufJSON.message(Custody_V1_Task.self, from: task.jsonValue)
            reply.asOfSeq = seq
        } else {
            reply.task = try ProtobufJSON.message(Custody_V1_Task.self, from: try await runtime.tasks.getTask(request.uuid).jsonValue)
        }
        return reply
    }
}

extension String {
    /// Proto3 strings have no "absent": an empty one counts as absent, so a missing required
    /// field is reported as required, as over HTTP.
    var nonEmpty: String? { isEmpty ? nil : self }
}
