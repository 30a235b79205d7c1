import NIOHTTP1

/// GitHubOps (docs/api.md "GitHub"). Each request is put in Custody's outbox and answered at once with
/// the pending operation, or with `wait` once it has finished (at most 30 s). An
/// `idempotencyKey` makes a retried request return the same operation instead of a second one.
extension CustodyClient {
    private struct OperationAnswer: Decodable { var operation: GitHubOperation }

    /// upsertFile: creates or replaces `path` with `content` (Custody fetches the current `sha`).
    public func upsertFile(
        path: String,
        content: String,
        message: String,
        owner: String? = nil,
        repo: String? = nil,
        branch: String? = nil,
        idempotencyKey: String? = nil,
        wait: Bool = false
    ) async throws(CustodyClientError) -> GitHubOperation {
        struct Body: Encodable {
            var path: String
            var content: String
            var message: String
            var owner: String?
            var repo: String?
            var branch: String?
        }
        if let rpc {
            return try await rpc.upsertFile(
                path: path,
                content: content,
                message: message,
                owner: owner,
                repo: repo,
                branch: branch,
                idempotencyKey: idempotencyKey,
                wait: wait
            )
        }
        let body = Body(path: path, content: content, message: message, owner: owner, repo: repo, branch: branch)
        return try await submit("/api/github/files", body: body, idempotencyKey: idempotencyKey, wait: wait)
    }

    /// openPR: a pull request from `head` into `base`.
    public func openPR(
        title: String,
        head: String,
        base: String,
        body text: String? = nil,
        owner: String? = nil,
        repo: String? = nil,
        idempotencyKey: String? = nil,
        wait: Bool = false
    ) async throws(CustodyClientError) -> GitHubOperation {
        struct Body: Encodable {
            var title: String
            var head: String
            var base: String
            var body: String?
            var owner: String?
            var repo: String?
        }
        if let rpc {
            return try await rpc.openPR(
                title: title,
                head: head,
                base: base,
                body: text,
                owner: owner,
                repo: repo,
                idempotencyKey: idempotencyKey,
                wait: wait
            )
        }
        let body = Body(title: title, head: head, base: base, body: text, owner: owner, repo: repo)
        return try await submit("/api/github/pulls", body: body, idempotencyKey: idempotencyKey, wait: wait)
    }

    /// createIssue.
    public func createIssue(
        title: String,
        body text: String? = nil,
        labels: [String]? = nil,
        owner: String? = nil,
        repo: String? = nil,
        idempotencyKey: String? = nil,
        wait: Bool = false
    ) async throws(CustodyClientError) -> GitHubOperation {
        struct Body: Encodable {
            var title: String
            var body: String?
            var labels: [String]?
            var owner: String?
            var repo: String?
        }
        if let rpc {
            return try await rpc.createIssue(
                title: title,
                body: text,
                labels: labels,
                owner: owner,
                repo: repo,
                idempotencyKey: idempotencyKey,
                wait: wait
            )
        }
        let body = Body(title: title, body: text, labels: labels, owner: owner, repo: repo)
        return try await submit("/api/github/issues", body: body, idempotencyKey: idempotencyKey, wait: wait)
    }

    /// getOperation.
    public func getOperation(_ id: String) async throws(CustodyClientError) -> GitHubOperation {
        if let rpc { return try await rpc.getOperation(id) }
        return try await send(.GET, "/api/github/operations/" + Self.percentEncoded(id), as: OperationAnswer.self).operation
    }

    /// The latest operations, newest first (`status`: pending, succeeded or failed).
    public func listOperations(status: String? = nil, limit: Int? = nil) async throws(CustodyClientError) -> [GitHubOperation] {
        struct Answer: Decodable { var operations: [GitHubOperation] }
        return try await send(.GET, "/api/github/operations", query: [("status", status), ("limit", limit.map(String.init))], as: Answer.self)
            .operations
    }

    private func submit(_ path: String, body: some Encodable, idempotencyKey: String?, wait: Bool) async throws(CustodyClientError) -> GitHubOperation
    {
        try await send(
            .POST,
            path,
            query: [("wait", wait ? "true" : nil)],
            headers: idempotencyKey.map { [("Idempotency-Key", $0)] } ?? [],
            body: body,
            as: OperationAnswer.self
        ).operation
    }
}
