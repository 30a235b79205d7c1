import Logging
import NIOCore
import PostgresNIO

extension PostgresConnection {
    /// Runs `body` on this connection; if it has not finished after `timeout`, closes the
    /// connection, which fails what is in flight on it, and throws
    /// ``CoreError/Code/storageUnavailable``.
    ///
    /// Why: a server that goes away without closing the socket (a host gone, a network cut)
    /// leaves a query unanswered until TCP gives up, which can take many minutes; closing the
    /// channel fails what is in flight on it. The statements themselves go through
    /// ``queryIfOpen(_:logger:)``, so that none is written to a channel already closed.
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
    /// Not postgres-nio's `withTransaction`, which sends its `ROLLBACK` whatever the failure, on a
    /// connection that may be failing.
    func inTransaction<T: Sendable>(logger: Logger, _ body: (PostgresConnection) async throws -> T) async throws -> T {
        _ = try await queryIfOpen("BEGIN", logger: logger)
        do {
            let value = try await body(self)
            _ = try await queryIfOpen("COMMIT", logger: logger)
            return value
        } catch {
            if Self.isAnswer(error) && !isClosed { _ = try? await queryIfOpen("ROLLBACK", logger: logger) }
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

extension PostgresConnection {
    /// Runs `query` — as `query(_:logger:)` does — if the connection is still open, and fails
    /// with ``CoreError/Code/storageUnavailable`` if it is closed.
    ///
    /// Why: postgres-nio 1.33 hands a query to its channel with no promise for the write. Once
    /// the channel has closed and its handlers are gone (the server died), the write is dropped
    /// and the query's answer never comes: the caller waits for good, and no deadline can end the
    /// wait, because a task group waits for its children. That was the hang when PostgreSQL was
    /// killed between two statements of a batch. This looks at the channel and writes the query
    /// in one job on the connection's event loop, where the channel closes: an open channel
    /// still has its handlers, which fail what they are given once it is closed.
    @concurrent
    func queryIfOpen(_ query: PostgresQuery, logger: Logger) async throws -> PostgresRowSequence {
        try await withTaskExecutorPreference(EventLoopTaskExecutor(eventLoop: eventLoop)) {
            try await self.queryOnLoop(query, logger: logger)
        }
    }

    /// Runs on the event loop (the task executor preference of ``queryIfOpen(_:logger:)``), up to
    /// the write of the query, which `query(_:logger:)` makes before it first suspends.
    @concurrent
    private func queryOnLoop(_ query: PostgresQuery, logger: Logger) async throws -> PostgresRowSequence {
        eventLoop.assertInEventLoop()
        guard !isClosed else {
            throw CoreError(.storageUnavailable, "the connection to the projections' PostgreSQL server is closed")
        }
        return try await self.query(query, logger: logger)
    }
}
