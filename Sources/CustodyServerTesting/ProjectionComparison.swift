import CustodyCore
import GRDB

/// Compares two projection stores through ``ProjectionStore``'s reads: the way to check that the
/// PostgreSQL store answers as the SQLite one (docs/projections.md) — for every task, order,
/// trace and GitHub operation `reference` holds, and for trace searches built from its values.
public enum ProjectionComparison {
    /// What differs between `reference` and `other` (empty when they answer the same), each
    /// difference one line.
    public static func differences(_ reference: SQLiteProjectionStore, _ other: any ProjectionStore) async throws -> [String] {
        var found: [String] = []
        func check<T: Equatable>(_ left: T, _ right: T, _ what: @autoclosure () -> String) {
            if left != right { found.append("\(what()): \(left) ≠ \(right)") }
        }
        check(try await reference.appliedSeq(), try await other.appliedSeq(), "applied seq")
        let values = try await reference.read { db in
            (
                uuids: try String.fetchAll(db, sql: "SELECT uuid FROM tasks"),
                orders: try String.fetchAll(
                    db,
                    sql: "SELECT order_id FROM tasks UNION SELECT order_id FROM followups UNION SELECT order_id FROM delivery_reports"
                ),
                traces: try String.fetchAll(db, sql: "SELECT trace_id FROM trace_summaries"),
                operations: try String.fetchAll(db, sql: "SELECT id FROM github_operations"),
                keys: try String.fetchAll(db, sql: "SELECT DISTINCT idempotency_key FROM github_operations"),
                sources: try String.fetchAll(db, sql: "SELECT DISTINCT source FROM operation_logs ORDER BY source LIMIT 6"),
                operationNames: try String.fetchAll(db, sql: "SELECT DISTINCT operation FROM operation_logs ORDER BY operation LIMIT 8"),
                stages: try String.fetchAll(db, sql: "SELECT DISTINCT stage FROM operation_logs ORDER BY stage LIMIT 6"),
                starts: try Int64.fetchAll(db, sql: "SELECT start FROM trace_summaries ORDER BY start"),
                head: try Int64.fetchOne(db, sql: "SELECT MAX(seq) FROM operation_logs") ?? 0
            )
        }
        for uuid in values.uuids + ["no-such-task"] {
            check(try await reference.task(uuid: uuid), try await other.task(uuid: uuid), "task \(uuid)")
        }
        for status in [nil] + TaskStatus.allCases.map(Optional.some) {
            for order in [nil] + values.orders.prefix(2).map(Optional.some) {
                check(
                    try await reference.tasks(orderId: order, status: status, afterCreatedSeq: 0, limit: 100_000),
                    try await other.tasks(orderId: order, status: status, afterCreatedSeq: 0, limit: 100_000),
                    "tasks of order \(order ?? "any") and status \(status?.rawValue ?? "any")"
                )
            }
        }
        let middle = UInt64(max(0, values.head / 2))
        check(
            try await reference.tasks(orderId: nil, status: nil, afterCreatedSeq: middle, limit: 7),
            try await other.tasks(orderId: nil, status: nil, afterCreatedSeq: middle, limit: 7),
            "a page of tasks"
        )
        for order in values.orders {
            for through in [UInt64.max, middle] {
                check(
                    try await reference.followups(orderId: order, throughSeq: through),
                    try await other.followups(orderId: order, throughSeq: through),
                    "follow-ups of \(order) through \(through)"
                )
            }
            let left = try await reference.orderActivity(orderId: order)
            let right = try await other.orderActivity(orderId: order)
            check(left.tasks, right.tasks, "activity tasks of \(order)")
            check(left.followups, right.followups, "activity follow-ups of \(order)")
            check(left.errors, right.errors, "activity errors of \(order)")
            check(left.spans, right.spans, "activity spans of \(order)")
            check(left.latestReport?.revision, right.latestReport?.revision, "latest report revision of \(order)")
            check(left.latestReport?.report, right.latestReport?.report, "latest report of \(order)")
            check(left.latestReport?.seq, right.latestReport?.seq, "latest report seq of \(order)")
            check(try await reference.latestReport(orderId: order), try await other.latestReport(orderId: order), "latestReport of \(order)")
        }
        for trace in values.traces + ["no-such-trace"] {
            check(try await reference.trace(trace), try await other.trace(trace), "trace \(trace)")
            check(try await reference.isRetired(traceId: trace), try await other.isRetired(traceId: trace), "retired \(trace)")
        }
        var searches = [TraceSearch()]
        func search(_ change: (inout TraceSearch) -> Void) {
            var search = TraceSearch()
            change(&search)
            searches.append(search)
        }
        for source in values.sources + ["no-such-source"] { search { $0.source = source } }
        for operation in values.operationNames { search { $0.operation = operation } }
        for stage in values.stages { search { $0.stage = stage } }
        search { $0.errorsOnly = true }
        search {
            $0.stage = values.stages.first
            $0.errorsOnly = true
        }
        search { $0.minDurationMs = 400 }
        for query in ["TRACE", "op2", "%", "_", "\\", "factory", "awkward", "É"] { search { $0.query = query } }
        if !values.starts.isEmpty {
            search {
                $0.since = values.starts[values.starts.count / 3]
                $0.until = values.starts[2 * values.starts.count / 3]
            }
        }
        for search in searches {
            let left = try await reference.searchTraces(search, after: nil, limit: 200)
            check(left, try await other.searchTraces(search, after: nil, limit: 200), "search \(search)")
            if let last = left.last {
                let cursor = TraceCursor(start: last.start, traceId: last.traceId)
                check(
                    try await reference.searchTraces(search, after: cursor, limit: 50),
                    try await other.searchTraces(search, after: cursor, limit: 50),
                    "search \(search) after \(cursor)"
                )
            }
        }
        check(try await reference.replays(limit: 100_000), try await other.replays(limit: 100_000), "replays")
        // The custody graph over every minute, summed per node and edge.
        check(
            try await reference.graph(fromMinute: .min, throughMinute: .max).tallies,
            try await other.graph(fromMinute: .min, throughMinute: .max).tallies,
            "the custody graph"
        )
        check(try await reference.runningReplays(), try await other.runningReplays(), "running replays")
        for id in values.operations + ["no-such-operation"] {
            check(try await reference.githubOperation(id: id), try await other.githubOperation(id: id), "GitHub operation \(id)")
        }
        for key in values.keys {
            check(
                try await reference.githubOperation(idempotencyKey: key),
                try await other.githubOperation(idempotencyKey: key),
                "GitHub operation of key \(key)"
            )
        }
        for status in [nil] + [GitHubOperationRecord.Status.pending, .succeeded, .failed].map(Optional.some) {
            check(
                try await reference.githubOperations(status: status, limit: 100_000),
                try await other.githubOperations(status: status, limit: 100_000),
                "GitHub operations \(status?.rawValue ?? "all")"
            )
        }
        check(
            String(describing: try await reference.pendingGitHubOperations()),
            String(describing: try await other.pendingGitHubOperations()),
            "pending GitHub operations"
        )
        check(try await reference.latestLogCheckpoint(), try await other.latestLogCheckpoint(), "latest log checkpoint")
        check(
            try await reference.logCheckpoints(fromSeq: 0, limit: 100_000),
            try await other.logCheckpoints(fromSeq: 0, limit: 100_000),
            "log checkpoints"
        )
        for seq in stride(from: UInt64(1), to: UInt64(max(2, values.head + 2)), by: max(1, Int(values.head / 16))) {
            check(try await reference.logCheckpoint(covering: seq), try await other.logCheckpoint(covering: seq), "checkpoint covering \(seq)")
        }
        check(try await reference.recordedLosses(), try await other.recordedLosses(), "recorded losses")
        check(try await reference.retention(), try await other.retention(), "retention")
        if let postgres = other as? PostgreSQLProjectionStore {
            for table in SQLiteProjectionStore.tables {
                let rows = try await reference.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM \(table)") ?? 0 }
                check(rows, try await postgres.rowCount(of: table), "rows of \(table)")
            }
        }
        return found
    }
}
