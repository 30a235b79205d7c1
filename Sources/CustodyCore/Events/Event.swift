import NIOCore

/// One event of the log: what happened, at which log position and when it was taken.
///
/// `seq` and `ingestedAt` are the log record's (assigned at append); the body is the record's
/// bytes, encoded by ``EventCodec``.
public struct Event: Sendable, Hashable {
    public var seq: UInt64
    /// Server time of the append, in nanoseconds since the Unix epoch.
    public var ingestedAt: Int64
    public var body: EventBody

    public init(seq: UInt64, ingestedAt: Int64, body: EventBody) {
        self.seq = seq
        self.ingestedAt = ingestedAt
        self.body = body
    }

    public var type: EventType { body.type }
}

/// The kinds of event (docs/log-format.md, "Events"). Names are never reused; the numeric tags are the encoding's.
public enum EventType: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    case span = 1
    case taskCreated = 2
    case taskStatusChanged = 3
    case factoryErrorRecorded = 4
    case followupSubmitted = 5
    case deliveryFinalized = 6
    case githubRequested = 7
    case githubSucceeded = 8
    case githubFailed = 9
    case replayStarted = 10
    case replayCompleted = 11
    case githubAttemptFailed = 12
    case logLoss = 13
    case logCheckpoint = 14
    case logRetention = 15

    /// The name used in the API, `custody log dump` and docs/log-format.md.
    public var name: String {
        switch self {
        case .span: "span"
        case .taskCreated: "task.created"
        case .taskStatusChanged: "task.status_changed"
        case .factoryErrorRecorded: "factory.error_recorded"
        case .followupSubmitted: "followup.submitted"
        case .deliveryFinalized: "delivery.finalized"
        case .githubRequested: "github.requested"
        case .githubSucceeded: "github.succeeded"
        case .githubFailed: "github.failed"
        case .replayStarted: "replay.started"
        case .replayCompleted: "replay.completed"
        case .githubAttemptFailed: "github.attempt_failed"
        case .logLoss: "log.loss"
        case .logCheckpoint: "log.checkpoint"
        case .logRetention: "log.retention"
        }
    }

    public init?(name: String) {
        guard let type = Self.allCases.first(where: { $0.name == name }) else { return nil }
        self = type
    }

    public var description: String { name }
}

/// What an event says.
public enum EventBody: Sendable, Hashable {
    case span(Span)
    case taskCreated(TaskCreated)
    case taskStatusChanged(TaskStatusChanged)
    case factoryErrorRecorded(FactoryErrorRecorded)
    case followupSubmitted(FollowupSubmitted)
    case deliveryFinalized(DeliveryFinalized)
    case githubRequested(GitHubRequested)
    case githubSucceeded(GitHubFinished)
    case githubFailed(GitHubFinished)
    case replayStarted(ReplayEvent)
    case replayCompleted(ReplayEvent)
    case githubAttemptFailed(GitHubAttemptFailed)
    case logLoss(LogLoss)
    case logCheckpoint(LogCheckpoint)
    case logRetention(LogRetention)

    public var type: EventType {
        switch self {
        case .span: .span
        case .taskCreated: .taskCreated
        case .taskStatusChanged: .taskStatusChanged
        case .factoryErrorRecorded: .factoryErrorRecorded
        case .followupSubmitted: .followupSubmitted
        case .deliveryFinalized: .deliveryFinalized
        case .githubRequested: .githubRequested
        case .githubSucceeded: .githubSucceeded
        case .githubFailed: .githubFailed
        case .replayStarted: .replayStarted
        case .replayCompleted: .replayCompleted
        case .githubAttemptFailed: .githubAttemptFailed
        case .logLoss: .logLoss
        case .logCheckpoint: .logCheckpoint
        case .logRetention: .logRetention
        }
    }
}

/// JSON text (UTF-8) kept as it was validated: an object for `details` and payloads. Stored and
/// returned without being re-encoded.
public struct JSONText: Sendable, Hashable, CustomStringConvertible {
    public var bytes: ByteBuffer

    public init(_ bytes: ByteBuffer) { self.bytes = bytes }
    public init(_ string: String) { self.bytes = ByteBuffer(string: string) }

    public var description: String { String(buffer: bytes) }
}
