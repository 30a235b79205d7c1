/// What a GitHub operation does.
public enum GitHubOperationKind: String, Sendable, Hashable, CaseIterable, EncodedTag {
    case upsertFile = "upsert_file"
    case openPR = "open_pr"
    case createIssue = "create_issue"

    var tag: UInt8 {
        switch self {
        case .upsertFile: 1
        case .openPR: 2
        case .createIssue: 3
        }
    }

}

/// `github.requested`: an operation put in the outbox. `params` never holds a secret.
public struct GitHubRequested: Sendable, Hashable {
    public var operationId: String
    public var kind: GitHubOperationKind
    /// The client's `Idempotency-Key`, or the operation id when it sent none: one key, one
    /// operation.
    public var idempotencyKey: String
    /// The trace of the request that asked for it: the outbox records its calls to GitHub there.
    public var traceId: String
    /// The request's parameters (a JSON object), without credentials.
    public var params: JSONText

    public init(operationId: String, kind: GitHubOperationKind, idempotencyKey: String, traceId: String, params: JSONText) {
        self.operationId = operationId
        self.kind = kind
        self.idempotencyKey = idempotencyKey
        self.traceId = traceId
        self.params = params
    }
}

/// `github.attempt_failed`: an attempt that failed in a way worth retrying (a 5xx, a rate limit,
/// no answer); the operation stays pending until `retryAt`.
public struct GitHubAttemptFailed: Sendable, Hashable {
    public var operationId: String
    public var kind: GitHubOperationKind
    public var attempt: UInt32
    /// When the next attempt is due (nanoseconds since the Unix epoch).
    public var retryAt: Int64
    /// What went wrong, as a JSON object.
    public var error: JSONText

    public init(operationId: String, kind: GitHubOperationKind, attempt: UInt32, retryAt: Int64, error: JSONText) {
        self.operationId = operationId
        self.kind = kind
        self.attempt = attempt
        self.retryAt = retryAt
        self.error = error
    }
}

/// `github.succeeded` (with GitHub's result) and `github.failed` (with the error).
public struct GitHubFinished: Sendable, Hashable {
    public var operationId: String
    public var kind: GitHubOperationKind
    public var attempt: UInt32
    /// GitHub's result or the error, as a JSON object.
    public var outcome: JSONText

    public init(operationId: String, kind: GitHubOperationKind, attempt: UInt32, outcome: JSONText) {
        self.operationId = operationId
        self.kind = kind
        self.attempt = attempt
        self.outcome = outcome
    }
}
