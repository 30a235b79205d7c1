/// The status of a task (docs/api.md). A new task is `pending`.
public enum TaskStatus: String, Sendable, Hashable, CaseIterable, EncodedTag {
    case pending
    case inProgress = "in_progress"
    case blocked
    case complete
    case failed
    case cancelled

    /// The encoding's tag.
    var tag: UInt8 {
        switch self {
        case .pending: 1
        case .inProgress: 2
        case .blocked: 3
        case .complete: 4
        case .failed: 5
        case .cancelled: 6
        }
    }

}

/// `task.created`
public struct TaskCreated: Sendable, Hashable {
    public var uuid: String
    public var orderId: String
    /// A JSON object.
    public var payload: JSONText

    public init(uuid: String, orderId: String, payload: JSONText) {
        self.uuid = uuid
        self.orderId = orderId
        self.payload = payload
    }
}

/// `task.status_changed`
public struct TaskStatusChanged: Sendable, Hashable {
    public var uuid: String
    public var status: TaskStatus
    public var previousStatus: TaskStatus

    public init(uuid: String, status: TaskStatus, previousStatus: TaskStatus) {
        self.uuid = uuid
        self.status = status
        self.previousStatus = previousStatus
    }
}

/// `factory.error_recorded`
public struct FactoryErrorRecorded: Sendable, Hashable {
    public var errorId: String
    public var source: String
    public var message: String
    public var orderId: String?
    public var taskUUID: String?
    public var errorType: String?
    /// A JSON object, or nil.
    public var payload: JSONText?

    public init(
        errorId: String,
        source: String,
        message: String,
        orderId: String? = nil,
        taskUUID: String? = nil,
        errorType: String? = nil,
        payload: JSONText? = nil
    ) {
        self.errorId = errorId
        self.source = source
        self.message = message
        self.orderId = orderId
        self.taskUUID = taskUUID
        self.errorType = errorType
        self.payload = payload
    }
}
