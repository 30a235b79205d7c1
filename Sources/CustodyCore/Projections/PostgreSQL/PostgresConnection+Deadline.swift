import Logging
import PostgresNIO

extension PostgresConnection {
    /// Runs `body` on this connection; if it has not finished after `timeout`, closes the
    /// connection, which fails what is in flight on it, and throws
    /// ``CoreError/Code/storageUnavailable``.
    ///
    /// Why: postgres-nio 1.33 can leave a query waiting for good when the server dies under it
    /// (seen here with SIGKILL of PostgreSQL during a batch: the writer's transaction never
    /// returned, and the node could not stop). Closing the channel is what ends such a wait.
    func withDeadline<T: Sendable>(_ timeout: Duration, _ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { try await body(self) }
            group.addTask {
                try await Task.sleep(for: timeout)
                return nil
            }
            defer { group.cancelAll() }
            guard let first = try await group.next(), let value = first else {
                // The deadline came first: close, then let the body fail (or finish) and go.
                try? await close()
                _ = try? await group.next()
                throw CoreError(.storageUnavailable, "the projections' PostgreSQL server did not answer within \(timeout); the connection was closed")
            }
            return value
        }
    }
}

extension PostgresConnection {
    /// `BEGIN`, `body`, `COMMIT`; when `body` fails with an answer of the server
    /// (``isAnswer(_:)``), `ROLLBACK`. On any other failure nothing more is sent: the caller
    /// closes the connection, and the server rolls back a transaction whose session ended.
    ///
    /// Not postgres-nio's `withTransaction`, which sends its `ROLLBACK` whatever the failure: a
    /// query written to a connection that is closing may never be answered by postgres-nio 1.33
    /// (seen here when PostgreSQL was killed during a batch: the writer waited for good).
    func inTransaction<T: Sendable>(logger: Logger, _ body: (PostgresConnection) async throws -> T) async throws -> T {
        _ = try await query("BEGIN", logger: logger)
        do {
            let value = try await body(self)
            _ = try await query("COMMIT", logger: logger)
            return value
        } catch {
            if Self.isAnswer(error) && !isClosed { _ = try? await query("ROLLBACK", logger: logger) }
            throw error
        }
    }

    /// Whether `error` came from a connection that works: an error the server reported (a SQL
    /// error), or Custody's own refusal (the guarded checkpoint's `conflict`) — not a lost or
    /// broken connection, a timeout or a cancellation.
    static func isAnswer(_ error: any Error) -> Bool {
        if let error = error as? PSQLError { return error.serverInfo != nil }
        if let error = error as? CoreError { return error.code == .conflict }
        return false
    }
}
