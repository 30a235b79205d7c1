import CustodyLog

/// GitHubOps (docs/api.md "GitHub"): upsertFile, openPR, createIssue, getOperation — shared by the
/// HTTP routes and the RPC methods.
///
/// A request is validated, checked against its idempotency key, and appended as
/// `github.requested` (parameters only: the credentials stay in the transport), with the
/// request's `processing` span; it is then the ``GitHubOutbox``'s to run. The answer is the
/// pending operation, or with `wait` the finished one (at most ``GitHubSettings/waitLimit``).
///
/// Idempotency: a request with an `Idempotency-Key` already used for the same kind and
/// parameters gets that operation back (nothing new is appended or run); used for a different
/// request, it is a `conflict`. Requests with one key are serialized, so two at once make one
/// operation.
public struct GitHubOperations: Sendable {
    let context: CoreContext
    let settings: GitHubSettings?
    let outbox: GitHubOutbox?
    let keys = KeyedSerializer()

    init(context: CoreContext, settings: GitHubSettings?, outbox: GitHubOutbox?) {
        self.context = context
        self.settings = settings
        self.outbox = outbox
    }

    /// The operations waiting to run (0 without GitHub configured).
    public var outboxDepth: Int { outbox?.depth ?? 0 }

    /// Whether GitHub is configured (else every operation is `github_not_configured`).
    public var isConfigured: Bool { outbox != nil }

    /// upsertFile: create or replace a file (the outbox fetches the current `sha` itself).
    public func upsertFile(
        _ change: GitHubFileChange,
        idempotencyKey: String? = nil,
        wait: Bool = false,
        request: RequestTrace
    ) async throws(CoreError) -> GitHubOperationRecord {
        let settings = try await configured(operation: "upsertFile", request: request)
        var params: [String: JSONValue] = [
            "owner": .string(try GitHubFieldRules.owner(change.owner, default: settings.defaultOwner)),
            "repo": .string(try GitHubFieldRules.repository(change.repo, default: settings.defaultRepository)),
            "path": .string(try GitHubFieldRules.path(change.path)),
            "message": .string(try FieldRules.text(change.message, "message", maximum: 64 << 10)),
        ]
        guard let content = change.content else { throw CoreError.invalidArgument("content", "is required") }
        guard content.utf8.count <= GitHubFieldRules.maximumContentBytes else {
            throw CoreError(.payloadTooLarge, "content is over \(GitHubFieldRules.maximumContentBytes) bytes", field: "content")
        }
        params["content"] = .string(content)
        if let branch = try GitHubFieldRules.branch(change.branch, "branch", required: false) { params["branch"] = .string(branch) }
        return try await submit(.upsertFile, params: params, idempotencyKey: idempotencyKey, wait: wait, operation: "upsertFile", request: request)
    }

    /// openPR.
    public func openPR(
        _ draft: GitHubPullRequestDraft,
        idempotencyKey: String? = nil,
        wait: Bool = false,
        request: RequestTrace
    ) async throws(CoreError) -> GitHubOperationRecord {
        let settings = try await configured(operation: "openPR", request: request)
        var params: [String: JSONValue] = [
            "owner": .string(try GitHubFieldRules.owner(draft.owner, default: settings.defaultOwner)),
            "repo": .string(try GitHubFieldRules.repository(draft.repo, default: settings.defaultRepository)),
            "title": .string(try GitHubFieldRules.title(draft.title)),
            "head": .string(try GitHubFieldRules.branch(draft.head, "head", required: true, allowsOwner: true)!),
            "base": .string(try GitHubFieldRules.branch(draft.base, "base", required: true)!),
        ]
        if let body = try GitHubFieldRules.body(draft.body) { params["body"] = .string(body) }
        return try await submit(.openPR, params: params, idempotencyKey: idempotencyKey, wait: wait, operation: "openPR", request: request)
    }

    /// createIssue.
    public func createIssue(
        _ draft: GitHubIssueDraft,
        idempotencyKey: String? = nil,
        wait: Bool = false,
        request: RequestTrace
    ) async throws(CoreError) -> GitHubOperationRecord {
        let settings = try await configured(operation: "createIssue", request: request)
        var params: [String: JSONValue] = [
            "owner": .string(try GitHubFieldRules.owner(draft.owner, default: settings.defaultOwner)),
            "repo": .string(try GitHubFieldRules.repository(draft.repo, default: settings.defaultRepository)),
            "title": .string(try GitHubFieldRules.title(draft.title)),
        ]
        if let body = try GitHubFieldRules.body(draft.body) { params["body"] = .string(body) }
        if let labels = try GitHubFieldRules.labels(draft.labels) { params["labels"] = .array(labels.map(JSONValue.string)) }
        return try await submit(.createIssue, params: params, idempotencyKey: idempotencyKey, wait: wait, operation: "createIssue", request: request)
    }

    /// getOperation: one operation as it stands, or `not_found`.
    public func getOperation(id: String) async throws(CoreError) -> GitHubOperationRecord {
        let id = try FieldRules.identifier(id, "id")
        try await context.awaitProjections()
        guard let record = try await read({ store in try await store.githubOperation(id: id) }) else {
            throw CoreError(.notFound, "there is no GitHub operation \(id)")
        }
        return record
    }

    /// The latest operations, newest first; only those of `status` when given.
    public func listOperations(status: String? = nil, limit: Int = 50) async throws(CoreError) -> [GitHubOperationRecord] {
        if let status, GitHubOperationRecord.Status(rawValue: status) == nil {
            throw CoreError.invalidArgument("status", "must be pending, succeeded or failed")
        }
        guard (1...1000).contains(limit) else { throw CoreError.invalidArgument("limit", "must be 1–1000") }
        try await context.awaitProjections()
        let status = status.flatMap(GitHubOperationRecord.Status.init(rawValue:))
        do {
            return try await context.store.githubOperations(status: status, limit: limit)
        } catch {
            throw CoreError.internal("reading the GitHub operations failed", error)
        }
    }

    // MARK: Submitting

    /// The settings, or `github_not_configured` (traced, with an error span: the request was valid,
    /// the server cannot serve it).
    private func configured(operation: String, request: RequestTrace) async throws(CoreError) -> GitHubSettings {
        guard let settings, outbox != nil else {
            let error = CoreError(.githubNotConfigured, "GitHub is not configured on this server: set GITHUB_TOKEN (or a token file) and restart")
            await context.appendErrorSpan(operation: operation, request: request, error: error)
            throw error
        }
        return settings
    }

    private func submit(
        _ kind: GitHubOperationKind,
        params: [String: JSONValue],
        idempotencyKey: String?,
        wait: Bool,
        operation: String,
        request: RequestTrace
    ) async throws(CoreError) -> GitHubOperationRecord {
        let started = ContinuousClock.now
        guard let outbox, let settings else { throw CoreError(.githubNotConfigured, "GitHub is not configured on this server") }
        let key = try idempotencyKey.map { key throws(CoreError) in try FieldRules.identifier(key, "idempotency_key", maximum: 255) }
        let paramsText = JSONValue.object(params).jsonText
        let record: GitHubOperationRecord
        if let key {
            await keys.acquire(key)
            defer { keys.release(key) }
            // Every earlier request with this key on this node is durable (they ran under the key
            // before this one): once the projections reach the head, they are in it. Another
            // node's request with the key at the same moment is stopped by the fence (the first
            // append under `github-key:<key>`): the loser reads again and finds it.
            record = try await context.retryingFenced { () throws(CoreError) -> GitHubOperationRecord in
                try await context.awaitProjections()
                if let existing = try await read({ store in try await store.githubOperation(idempotencyKey: key) }) {
                    guard existing.kind == kind, existing.params == JSONValue.object(params) else {
                        throw CoreError(.conflict, "the idempotency key \(key) was used for a different request (operation \(existing.id))")
                    }
                    return existing
                }
                return try await append(
                    kind,
                    params: paramsText,
                    key: key,
                    operation: operation,
                    request: request,
                    started: started,
                    outbox: outbox,
                    fence: AppendFence(key: "github-key:" + key, lastSeq: 0)
                )
            }
        } else {
            record = try await append(kind, params: paramsText, key: nil, operation: operation, request: request, started: started, outbox: outbox)
        }
        return wait ? try await finished(record.id, outbox: outbox, settings: settings) : record
    }

    private func append(
        _ kind: GitHubOperationKind,
        params: JSONText,
        key: String?,
        operation: String,
        request: RequestTrace,
        started: ContinuousClock.Instant,
        outbox: GitHubOutbox,
        fence: AppendFence? = nil
    ) async throws(CoreError) -> GitHubOperationRecord {
        let id = context.newIdentifier()
        let requested = GitHubRequested(operationId: id, kind: kind, idempotencyKey: key ?? id, traceId: request.traceId, params: params)
        let receipt = try await context.append(
            [.githubRequested(requested)],
            operation: operation,
            request: request,
            started: started,
            details: .object(["operation_id": .string(id), "kind": .string(kind.rawValue)]),
            fence: fence
        )
        let paramsValue = params.jsonValue
        // Where this node runs the outbox; another node's reads it from the log.
        await outbox.enqueue(
            GitHubPendingOperation(
                id: id,
                kind: kind,
                params: paramsValue.objectValue ?? [:],
                traceId: request.traceId,
                requestedSeq: receipt.firstSeq,
                requestedAt: receipt.timestamp,
                attempts: 0,
                notBefore: 0,
                uncertain: false
            )
        )
        return GitHubOperationRecord(
            id: id,
            kind: kind,
            status: .pending,
            params: paramsValue,
            attempts: 0,
            idempotencyKey: requested.idempotencyKey,
            traceId: request.traceId,
            requestedAt: receipt.timestamp,
            updatedAt: receipt.timestamp
        )
    }

    /// The operation once finished, or as it stands when the wait limit passes first. When this
    /// node runs the outbox, its outcome is awaited there; else (another node holds the lease)
    /// the projections are read each time they apply more, until it is no longer pending.
    private func finished(_ id: String, outbox: GitHubOutbox, settings: GitHubSettings) async throws(CoreError) -> GitHubOperationRecord {
        let deadline = ContinuousClock.now + settings.waitLimit
        if let seq = await outbox.waitForOutcome(id, timeout: settings.waitLimit), seq > 0 {
            try await context.projector.waitUntilApplied(seq, timeout: context.readTimeout)
        }
        while true {
            let record = try await getOperation(id: id)
            let remaining = deadline - ContinuousClock.now
            guard record.status == .pending, remaining > .zero else { return record }
            let applied = await context.projector.appliedSeq
            // Times out quietly when nothing more is applied: the record is read again.
            try? await context.projector.waitUntilApplied(applied + 1, timeout: min(remaining, .seconds(1)))
        }
    }

    private func read(_ body: (any ProjectionStore) async throws -> GitHubOperationRecord?) async throws(CoreError) -> GitHubOperationRecord? {
        do {
            return try await body(context.store)
        } catch {
            throw CoreError.internal("reading the GitHub operations failed", error)
        }
    }
}
