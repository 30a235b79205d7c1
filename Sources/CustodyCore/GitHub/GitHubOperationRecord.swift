/// A GitHub operation as the API returns it (a `github_operations` row).
public struct GitHubOperationRecord: Sendable, Hashable {
    public enum Status: String, Sendable, Hashable {
        case pending, succeeded, failed
    }

    public var id: String
    public var kind: GitHubOperationKind
    public var status: Status
    /// The request's parameters as recorded (never a secret).
    public var params: JSONValue
    /// Attempts made so far.
    public var attempts: Int
    /// GitHub's result, once succeeded.
    public var result: JSONValue?
    /// Why it failed; for a pending operation, why its last attempt failed.
    public var error: JSONValue?
    public var idempotencyKey: String
    public var traceId: String
    public var requestedAt: Int64
    public var updatedAt: Int64
    /// When a pending operation's next attempt is due, after a transient failure.
    public var nextAttemptAt: Int64?

    public var isFinished: Bool { status != .pending }

    init(
        id: String,
        kind: GitHubOperationKind,
        status: Status,
        params: JSONValue,
        attempts: Int,
        idempotencyKey: String,
        traceId: String,
        requestedAt: Int64,
        updatedAt: Int64
    ) {
        self.id = id
        self.kind = kind
        self.status = status
        self.params = params
        self.attempts = attempts
        self.idempotencyKey = idempotencyKey
        self.traceId = traceId
        self.requestedAt = requestedAt
        self.updatedAt = updatedAt
    }

    /// docs/api.md's operation: `{"id", "kind", "status", …}`.
    public var jsonValue: JSONValue {
        var object: [String: JSONValue] = [
            "id": .string(id), "kind": .string(kind.rawValue), "status": .string(status.rawValue), "params": params,
            "attempts": .integer(Int64(attempts)), "idempotency_key": .string(idempotencyKey), "trace_id": .string(traceId),
            "requested_at": .string(RFC3339.format(requestedAt)), "updated_at": .string(RFC3339.format(updatedAt)),
        ]
        if let result { object["result"] = result }
        if let error { object["error"] = error }
        if let nextAttemptAt { object["next_attempt_at"] = .string(RFC3339.format(nextAttemptAt)) }
        return .object(object)
    }
}
