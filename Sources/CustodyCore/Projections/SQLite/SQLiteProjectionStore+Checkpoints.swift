import CustodyLog
import GRDB

// The reads of `log_checkpoints` for ``ProjectionStore``; the table is in
// `schema/projections/006_log_checkpoints.sql`.

extension SQLiteProjectionStore {
    public func latestLogCheckpoint() async throws -> StoredLogCheckpoint? {
        try await read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM log_checkpoints ORDER BY record_seq DESC LIMIT 1").map(StoredLogCheckpoint.init(row:))
        }
    }

    public func logCheckpoints(fromSeq: UInt64, limit: Int) async throws -> [StoredLogCheckpoint] {
        try await read { db in
            try Row.fetchAll(
                db,
                sql: "SELECT * FROM log_checkpoints WHERE seq >= ? ORDER BY record_seq LIMIT ?",
                arguments: [Int64(bitPattern: fromSeq), limit]
            ).map(StoredLogCheckpoint.init(row:))
        }
    }

    public func logCheckpoint(covering seq: UInt64) async throws -> StoredLogCheckpoint? {
        try await read { db in
            try Row.fetchOne(
                db,
                sql: "SELECT * FROM log_checkpoints WHERE seq >= ? ORDER BY seq, record_seq LIMIT 1",
                arguments: [Int64(bitPattern: seq)]
            ).map(StoredLogCheckpoint.init(row:))
        }
    }
}

extension StoredLogCheckpoint {
    /// A row of `log_checkpoints`, which only ``ProjectionWriter`` writes (from a decoded event),
    /// so its hex columns are well formed.
    init(row: Row) {
        let next: String? = row["next_public_key"]
        self.init(
            checkpoint: LogCheckpoint(
                seq: UInt64(bitPattern: row["seq"]),
                chain: ChainValue(hex: row["chain"] as String) ?? .zero,
                at: row["at"],
                publicKey: Hex.decode(row["public_key"]) ?? [],
                nextPublicKey: next.flatMap(Hex.decode),
                signature: Hex.decode(row["signature"]) ?? []
            ),
            recordSeq: UInt64(bitPattern: row["record_seq"])
        )
    }
}
