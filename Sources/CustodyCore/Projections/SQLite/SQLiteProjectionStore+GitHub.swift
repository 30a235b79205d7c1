import GRDB

// The reads of `github_operations` for ``ProjectionStore``; the table is in
// `schema/projections/003_github_outbox.sql`.

extension SQLiteProjectionStore {
    public func githubOperation(id: String) async throws -> GitHubOperationRecord? {
        try await read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM github_operations WHERE id = ?", arguments: [id]).map(GitHubOperationRecord.init(row:))
        }
    }

    public func githubOperation(idempotencyKey: String) async throws -> GitHubOperationRecord? {
        try await read { db in
            try Row.fetchOne(
                db,
                sql: "SELECT * FROM github_operations WHERE idempotency_key = ? ORDER BY requested_seq LIMIT 1",
                arguments: [idempotencyKey]
            ).map(GitHubOperationRecord.init(row:))
        }
    }

    public func githubOperations(status: GitHubOperationRecord.Status?, limit: Int) async throws -> [GitHubOperationRecord] {
        try await read { db in
            try Row.fetchAll(
                db,
                sql: "SELECT * FROM github_operations WHERE ?1 IS NULL OR status = ?1 ORDER BY requested_seq DESC LIMIT ?2",
                arguments: [status?.rawValue, limit]
            ).map(GitHubOperationRecord.init(row:))
        }
    }

    public func pendingGitHubOperations() async throws -> [GitHubPendingOperation] {
        try await read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT id, kind, params, trace_id, requested_seq, requested_at, attempts, next_attempt_at
                    FROM github_operations WHERE status = 'pending' ORDER BY requested_seq
                    """
            ).compactMap { row -> GitHubPendingOperation? in
                guard let kind = GitHubOperationKind(rawValue: row["kind"]), let params = JSONText(row["params"] as String).jsonValue.objectValue
                else { return nil }
                let attempts: Int64 = row["attempts"]
                let requestedSeq: Int64 = row["requested_seq"]
                return GitHubPendingOperation(
                    id: row["id"],
                    kind: kind,
                    params: params,
                    traceId: row["trace_id"],
                    requestedSeq: UInt64(requestedSeq),
                    requestedAt: row["requested_at"],
                    attempts: UInt32(clamping: attempts),
                    notBefore: row["next_attempt_at"] ?? 0,
                    uncertain: true
                )
            }
        }
    }
}

extension GitHubOperationRecord {
    init(row: Row) {
        self.init(
            id: row["id"],
            kind: GitHubOperationKind(rawValue: row["kind"]) ?? .createIssue,
            status: Status(rawValue: row["status"]) ?? .pending,
            params: JSONText(row["params"] as String).jsonValue,
            attempts: row["attempts"],
            idempotencyKey: row["idempotency_key"],
            traceId: row["trace_id"],
            requestedAt: row["requested_at"],
            updatedAt: row["updated_at"]
        )
        result = (row["result"] as String?).map { JSONText($0).jsonValue }
        error = (row["error"] as String?).map { JSONText($0).jsonValue }
        nextAttemptAt = row["next_attempt_at"]
    }
}
