/// What a GitHub operation does.
public enum GitHubOperationKind: String, Sendable, Hashable, CaseIterable, EncodedTag {
    case upsertFile = "upsert_file"
    case openPullRequest = "open_pr"
    case createIssue = "create_issue"

    var tag: UInt8 {
        switch self {
        case .upsertFile: 1
        case .openPullRequest: 2
        case .createIssue: 3
        }
    }

}

/// `github.requested`: an operation put in the outbox. `params` never holds a secret.
public struct GitHubRequested: Sendable, Hashable {
    public var operationId: String
    public var kind: GitHubOperationKind
    /// The request's parameters (a JSON object), without credentials.
    public var params: JSONText

    public init(operationId: String, kind: GitHubOperationKind, params: JSONText) {
        self.operationId = operationId
        self.kind = kind
        self.params = params
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
