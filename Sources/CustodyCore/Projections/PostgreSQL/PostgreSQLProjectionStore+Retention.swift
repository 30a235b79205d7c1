import CustodyLog
import GRDB
import PostgresNIO

// Retention in the PostgreSQL projections (docs/operations.md, "Retention"): as in the SQLite
// store (`SQLite/SQLiteProjectionStore+Retention.swift`). The state snapshots stay SQLite files on
// each node; their rows are copied in by column name.

extension PostgreSQLProjectionStore {
    public func retention() async throws -> RetentionRecord? {
        guard
            let row = try await rows(
                "SELECT seq, first_seq, last_seq, chain, snapshot, bytes, recorded_at FROM log_retentions ORDER BY seq DESC LIMIT 1"
            ).first,
            let chain = ChainValue(hex: try row[3].decode(String.self))
        else { return nil }
        let totals = try await rows(
            "SELECT COALESCE(SUM(last_seq - first_seq + 1), 0)::bigint, COALESCE(SUM(bytes), 0)::bigint, COUNT(*) FROM log_retentions WHERE last_seq >= first_seq"
        )[0]
        return RetentionRecord(
            latest: LogRetention(
                firstSeq: UInt64(bitPattern: try row[1].decode(Int64.self)),
                lastSeq: UInt64(bitPattern: try row[2].decode(Int64.self)),
                chain: chain,
                snapshot: try row[4].decode(String.self),
                bytes: try row[5].decode(Int64.self),
                recordedAt: try row[6].decode(Int64.self)
            ),
            recordSeq: UInt64(bitPattern: try row[0].decode(Int64.self)),
            deletedEvents: UInt64(bitPattern: try totals[0].decode(Int64.self)),
            deletedBytes: try totals[1].decode(Int64.self),
            passes: Int(try totals[2].decode(Int64.self))
        )
    }

    public func isRetired(traceId: String) async throws -> Bool {
        try await !rows("SELECT 1 FROM retired_traces WHERE trace_key = \(TraceKey.of(traceId))").isEmpty
    }

    /// Prunes on the node that writes (the others find nothing to do: the writer's own pass, or
    /// the next one, does it).
    public func pruneSpans(through seq: UInt64, snapshotAt snapshotPath: String) async throws -> SpanPruning {
        var pruning = SpanPruning()
        guard try await writer.mayApply() else { return pruning }
        let through = Int64(clamping: seq)
        let retired = try Self.rows(of: "retired_traces", inSnapshotAt: snapshotPath)
        let logger = logger
        // operation_logs in windows of seqs: the projector's batches go on between them.
        let window: Int64 = 50_000
        var low =
            try await writer.transaction { connection in
                try await connection.queryIfOpen("SELECT MIN(seq) FROM operation_logs", logger: logger).collect().first?.decode(Int64?.self)
            } ?? (through + 1)
        while low <= through {
            let (from, high) = (low, min(through, low + window - 1))
            pruning.spans += try await writer.transaction { connection in
                let deleted = try await connection.queryIfOpen(
                    "DELETE FROM operation_logs WHERE seq BETWEEN \(from) AND \(high) RETURNING 1",
                    logger: logger
                ).collect()
                return deleted.count
            }
            low = high + 1
        }
        pruning.traces = try await writer.transaction { connection in
            _ = try await connection.queryIfOpen(
                "DELETE FROM trace_spans WHERE trace IN (SELECT id FROM trace_summaries WHERE last_seq <= \(through))",
                logger: logger
            )
            let traces = try await connection.queryIfOpen("DELETE FROM trace_summaries WHERE last_seq <= \(through) RETURNING 1", logger: logger)
                .collect().count
            // Traces partly in the range: their rows of trace_spans keep the later seqs only.
            _ = try await connection.queryIfOpen(
                """
                WITH cut AS (
                    DELETE FROM trace_spans WHERE first_seq <= \(through)
                    RETURNING trace, ARRAY(SELECT x FROM unnest(seqs) WITH ORDINALITY AS u(x, n) WHERE x > \(through) ORDER BY n) AS kept
                )
                INSERT INTO trace_spans (trace, first_seq, seqs) SELECT trace, kept[1], kept FROM cut WHERE cardinality(kept) > 0
                """,
                logger: logger
            )
            try await Self.insert(retired, into: "retired_traces", over: connection, logger: logger)
            return traces
        }
        return pruning
    }

    public func loadSnapshot(at snapshotPath: String) async throws -> UInt64 {
        let seq = try SQLiteProjectionStore.appliedSeq(ofDatabaseAt: snapshotPath)
        let tables = try SQLiteProjectionStore.stateTables.map { table in (table, try Self.rows(of: table, inSnapshotAt: snapshotPath)) }
        let checkpoint = try Self.rows(of: "projection_checkpoint", inSnapshotAt: snapshotPath)
        let logger = logger
        try await writer.transaction { connection in
            for (table, rows) in tables { try await Self.insert(rows, into: table, over: connection, logger: logger) }
            _ = try await connection.queryIfOpen("DELETE FROM projection_checkpoint", logger: logger)
            try await Self.insert(checkpoint, into: "projection_checkpoint", over: connection, logger: logger)
        }
        return seq
    }

    /// A table's rows in a SQLite snapshot: its column names and values.
    struct SnapshotRows: Sendable {
        var columns: [String] = []
        var rows: [[DatabaseValue]] = []
    }

    static func rows(of table: String, inSnapshotAt path: String) throws -> SnapshotRows {
        var configuration = Configuration()
        configuration.readonly = true
        let queue = try DatabaseQueue(path: path, configuration: configuration)
        defer { try? queue.close() }
        return try queue.read { db in
            var result = SnapshotRows()
            result.columns = try db.columns(in: table).map(\.name)
            result.rows = try Row.fetchAll(db, sql: "SELECT * FROM \(table)").map { Array($0.databaseValues) }
            return result
        }
    }

    /// Inserts rows read from SQLite, by column name, many per statement.
    static func insert(_ snapshot: SnapshotRows, into table: String, over connection: PostgresConnection, logger: Logger) async throws {
        guard !snapshot.columns.isEmpty, !snapshot.rows.isEmpty else { return }
        let columns = snapshot.columns.map { "\"\($0)\"" }.joined(separator: ", ")
        let perStatement = max(1, PostgreSQLBatchWriter.maximumBinds / snapshot.columns.count)
        var start = 0
        while start < snapshot.rows.count {
            let chunk = snapshot.rows[start..<min(snapshot.rows.count, start + perStatement)]
            var bindings = PostgresBindings(capacity: chunk.count * snapshot.columns.count)
            var values: [String] = []
            for row in chunk {
                let base = bindings.count
                for value in row {
                    switch value.storage {
                    case .null: bindings.appendNull()
                    case .int64(let integer): bindings.append(integer)
                    case .double(let double): bindings.append(double)
                    case .string(let text): bindings.append(text)
                    case .blob(let data): bindings.append(ByteBuffer(bytes: data))
                    }
                }
                values.append("(" + (1...row.count).map { "$\(base + $0)" }.joined(separator: ", ") + ")")
            }
            _ = try await connection.queryIfOpen(
                PostgresQuery(
                    unsafeSQL: "INSERT INTO \(table) (\(columns)) VALUES \(values.joined(separator: ", ")) ON CONFLICT DO NOTHING",
                    binds: bindings
                ),
                logger: logger
            )
            start += chunk.count
        }
    }
}
