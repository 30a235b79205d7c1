import GRDB

// The reads of `tasks`, `followups`, `error_events`, `delivery_reports` (and the spans of an
// order's tasks in `operation_logs`) for ``ProjectionStore``; tables in `schema/projections/`.

extension SQLiteProjectionStore {
    public func task(uuid: String) async throws -> TaskRecord? {
        try await read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM tasks WHERE uuid = ?", arguments: [uuid]).map(TaskRecord.init(row:))
        }
    }

    public func tasks(orderId: String?, status: TaskStatus?, afterCreatedSeq: UInt64, limit: Int) async throws -> [TaskRecord] {
        try await read { db in
            var sql = "SELECT * FROM tasks WHERE created_seq > ?"
            var arguments: [any DatabaseValueConvertible] = [Int64(afterCreatedSeq)]
            if let orderId {
                sql += " AND order_id = ?"
                arguments.append(orderId)
            }
            if let status {
                sql += " AND status = ?"
                arguments.append(status.rawValue)
            }
            sql += " ORDER BY created_seq LIMIT ?"
            arguments.append(limit)
            return try Row.fetchAll(db, sql: sql, arguments: StatementArguments(arguments)).map(TaskRecord.init(row:))
        }
    }

    public func followups(orderId: String, throughSeq: UInt64) async throws -> [FollowupRecord] {
        let bound = Int64(clamping: throughSeq)
        return try await read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM followups WHERE order_id = ? AND seq <= ? ORDER BY seq", arguments: [orderId, bound])
                .map(FollowupRecord.init(row:))
        }
    }

    public func orderActivity(orderId: String) async throws -> OrderActivity {
        try await read { db in
            var activity = OrderActivity()
            activity.tasks = try Row.fetchAll(db, sql: "SELECT * FROM tasks WHERE order_id = ? ORDER BY created_seq", arguments: [orderId])
                .map(TaskRecord.init(row:))
            activity.followups = try Row.fetchAll(db, sql: "SELECT * FROM followups WHERE order_id = ? ORDER BY seq", arguments: [orderId])
                .map(FollowupRecord.init(row:))
            let errorRow = try Row.fetchOne(
                db,
                sql:
                    "SELECT COUNT(*) AS n, MAX(seq) AS last, MIN(created_at) AS first_at, MAX(created_at) AS last_at FROM error_events WHERE order_id = ?",
                arguments: [orderId]
            )!
            activity.errors.count = errorRow["n"]
            activity.errors.lastSeq = errorRow["last"]
            activity.errors.firstAt = errorRow["first_at"]
            activity.errors.lastAt = errorRow["last_at"]
            let spanRow = try Row.fetchOne(
                db,
                sql: """
                    SELECT COUNT(*) AS n, COUNT(DISTINCT trace_id) AS traces, COALESCE(SUM(is_error), 0) AS errors, MAX(seq) AS last,
                        MIN(ingested_at) AS first_at, MAX(ingested_at) AS last_at
                    FROM operation_logs WHERE task_uuid IN (SELECT uuid FROM tasks WHERE order_id = ?)
                    """,
                arguments: [orderId]
            )!
            activity.spans.count = spanRow["n"]
            activity.spans.traces = spanRow["traces"]
            activity.spans.errors = spanRow["errors"]
            activity.spans.lastSeq = spanRow["last"]
            activity.spans.firstAt = spanRow["first_at"]
            activity.spans.lastAt = spanRow["last_at"]
            if let row = try Row.fetchOne(
                db,
                sql: "SELECT revision, report, seq FROM delivery_reports WHERE order_id = ? ORDER BY revision DESC LIMIT 1",
                arguments: [orderId]
            ) {
                activity.latestReport = (row["revision"], JSONText(row["report"] as String), row["seq"])
            }
            return activity
        }
    }

    public func latestReport(orderId: String) async throws -> JSONText? {
        try await read { db in
            try String.fetchOne(
                db,
                sql: "SELECT report FROM delivery_reports WHERE order_id = ? ORDER BY revision DESC LIMIT 1",
                arguments: [orderId]
            ).map(JSONText.init)
        }
    }
}

extension TaskRecord {
    init(row: Row) {
        uuid = row["uuid"]
        orderId = row["order_id"]
        status = TaskStatus(rawValue: row["status"]) ?? .pending
        payload = JSONText(row["payload"] as String)
        createdAt = row["created_at"]
        updatedAt = row["updated_at"]
        lastSeq = UInt64(row["last_seq"] as Int64)
        createdSeq = UInt64(row["created_seq"] as Int64)
    }
}

extension FollowupRecord {
    init(row: Row) {
        id = row["id"]
        orderId = row["order_id"]
        type = row["type"]
        note = row["note"]
        impact = FollowupImpact(rawValue: row["impact"]) ?? .low
        createdAt = row["created_at"]
        seq = UInt64(row["seq"] as Int64)
    }
}
