import CustodyLog
import GRDB
import Synchronization

// Retention in the SQLite projections (docs/operations.md, "Retention"): the record of what was
// deleted (`log_retentions`), the traces it took (`retired_traces`), pruning the span projections
// for a deleted range, and the state snapshots (``StateSnapshots``), which are databases of this
// schema holding only the state tables.

extension SQLiteProjectionStore {
    /// The projections that are state, not spans: what a snapshot holds and what retention keeps.
    public static let stateTables = [
        "tasks", "followups", "error_events", "delivery_reports", "github_operations", "replays", "log_losses", "log_checkpoints",
        "log_retentions", "retired_traces",
    ]

    public func retention() async throws -> RetentionRecord? {
        try await read { db in
            guard
                let row = try Row.fetchOne(
                    db,
                    sql: "SELECT seq, first_seq, last_seq, chain, snapshot, bytes, recorded_at FROM log_retentions ORDER BY seq DESC LIMIT 1"
                ),
                let chain = ChainValue(hex: row[3] as String)
            else { return nil }
            let totals = try Row.fetchOne(
                db,
                sql:
                    "SELECT COALESCE(SUM(last_seq - first_seq + 1), 0), COALESCE(SUM(bytes), 0), COUNT(*) FROM log_retentions WHERE last_seq >= first_seq"
            )!
            return RetentionRecord(
                latest: LogRetention(
                    firstSeq: UInt64(bitPattern: row[1]),
                    lastSeq: UInt64(bitPattern: row[2]),
                    chain: chain,
                    snapshot: row[4],
                    bytes: row[5],
                    recordedAt: row[6]
                ),
                recordSeq: UInt64(bitPattern: row[0]),
                deletedEvents: UInt64(bitPattern: totals[0]),
                deletedBytes: totals[1],
                passes: totals[2]
            )
        }
    }

    public func isRetired(traceId: String) async throws -> Bool {
        guard hasRetiredTraces.load(ordering: .acquiring) else { return false }
        return try await read { db in
            try Bool.fetchOne(db, sql: "SELECT 1 FROM retired_traces WHERE trace_key = ?", arguments: [TraceKey.of(traceId)]) ?? false
        }
    }

    /// Records traces found in a deleted range (a snapshot being built).
    func retire(traceKeys: Set<Int64>, throughSeq: UInt64) async throws {
        guard !traceKeys.isEmpty else { return }
        try await pool.write { db in
            let statement = try db.makeStatement(sql: "INSERT OR IGNORE INTO retired_traces (trace_key, through_seq) VALUES (?, ?)")
            for key in traceKeys.sorted() { try statement.execute(arguments: [key, Int64(throughSeq)]) }
        }
    }

    public func pruneSpans(through seq: UInt64, snapshotAt snapshotPath: String) async throws -> SpanPruning {
        let through = Int64(clamping: seq)
        var pruning = SpanPruning()
        // operation_logs in windows of seqs: the projector's batches go on between them.
        let window: Int64 = 50_000
        var low = try await read { db in try Int64.fetchOne(db, sql: "SELECT MIN(seq) FROM operation_logs") } ?? (through + 1)
        while low <= through {
            let (from, high) = (low, min(through, low + window - 1))
            pruning.spans += try await pool.write { db in
                try db.execute(sql: "DELETE FROM operation_logs WHERE seq BETWEEN ? AND ?", arguments: [from, high])
                return db.changesCount
            }
            low = high + 1
        }
        summaries.withLock { $0.removeAll() }
        // The graph's links of a trace are read again from what is left of its spans.
        links.withLock { $0.removeAll() }
        defer { summaries.withLock { $0.removeAll() } }
        let (traces, fresh) = try await pool.writeWithoutTransaction { db -> (Int, RecentTraces) in
            try db.execute(sql: "ATTACH DATABASE ? AS snapshot", arguments: [snapshotPath])
            defer { try? db.execute(sql: "DETACH DATABASE snapshot") }
            var traces = 0
            var fresh = RecentTraces()
            try db.inTransaction {
                try db.execute(sql: "DELETE FROM value_batches WHERE last_seq <= ?", arguments: [through])
                // Traces wholly in the deleted range.
                try db.execute(
                    sql: "DELETE FROM trace_keys WHERE (trace_key, id) IN (SELECT trace_key, id FROM trace_summaries WHERE last_seq <= ?)",
                    arguments: [through]
                )
                try db.execute(
                    sql: "DELETE FROM trace_spans WHERE trace IN (SELECT id FROM trace_summaries WHERE last_seq <= ?)",
                    arguments: [through]
                )
                try db.execute(sql: "DELETE FROM trace_summaries WHERE last_seq <= ?", arguments: [through])
                traces = db.changesCount
                // Traces partly in it: their rows of trace_spans keep the later seqs only.
                let rows = try Row.fetchAll(db, sql: "SELECT trace, first_seq, seqs FROM trace_spans WHERE first_seq <= ?", arguments: [through])
                for row in rows {
                    let trace: Int64 = row[0]
                    let first: Int64 = row[1]
                    let kept = Self.seqs(inJSONArray: row[2]).map { Int64(bitPattern: $0) }.filter { $0 > through }
                    try db.execute(sql: "DELETE FROM trace_spans WHERE trace = ? AND first_seq = ?", arguments: [trace, first])
                    if let newFirst = kept.first {
                        try db.execute(
                            sql: "INSERT INTO trace_spans (trace, first_seq, seqs) VALUES (?, ?, ?)",
                            arguments: [trace, newFirst, ProjectionWriter.jsonArray(kept)]
                        )
                    }
                }
                try db.execute(sql: "INSERT OR IGNORE INTO main.retired_traces SELECT * FROM snapshot.retired_traces")
                fresh = try RecentTraces.load(db)
                return .commit
            }
            return (traces, fresh)
        }
        recent.withLock { $0 = fresh }
        try await noteRetiredTraces()
        pruning.traces = traces
        return pruning
    }

    /// Takes the state of a snapshot into this store, which must be empty (a rebuild target),
    /// and moves its checkpoint to the snapshot's: the log after it is what is left to apply.
    public func loadSnapshot(at snapshotPath: String) async throws -> UInt64 {
        let seq = try SQLiteProjectionStore.appliedSeq(ofDatabaseAt: snapshotPath)
        try await pool.writeWithoutTransaction { db in
            try db.execute(sql: "ATTACH DATABASE ? AS snapshot", arguments: [snapshotPath])
            defer { try? db.execute(sql: "DETACH DATABASE snapshot") }
            try db.inTransaction {
                for table in Self.stateTables {
                    try db.execute(sql: "INSERT INTO main.\(table) SELECT * FROM snapshot.\(table)")
                }
                try db.execute(sql: "DELETE FROM main.projection_checkpoint")
                try db.execute(sql: "INSERT INTO main.projection_checkpoint SELECT * FROM snapshot.projection_checkpoint")
                return .commit
            }
        }
        try await noteRetiredTraces()
        return seq
    }

    /// Reads whether `retired_traces` has a row into ``hasRetiredTraces``.
    func noteRetiredTraces() async throws {
        hasRetiredTraces.store(try await pool.read(Self.anyRetiredTraces), ordering: .releasing)
    }

    static func anyRetiredTraces(_ db: Database) throws -> Bool {
        try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM retired_traces)") ?? false
    }
}

/// What pruning the span projections for a deleted range removed.
public struct SpanPruning: Sendable, Hashable {
    /// `operation_logs` rows.
    public var spans = 0
    /// Traces wholly deleted (their `trace_summaries` rows).
    public var traces = 0

    public init() {}
}
