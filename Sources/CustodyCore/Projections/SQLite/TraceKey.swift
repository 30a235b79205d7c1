import GRDB

/// The integer that `trace_summaries` is indexed by instead of the trace id: the 64-bit FNV-1a
/// hash of the id's UTF-8 bytes, as a signed integer.
///
/// An index entry of 8 bytes instead of a 32-character id makes the index a third of the size,
/// so a batch of new traces (inserted at random places: trace ids are random) dirties fewer of
/// its pages, and each commit writes fewer pages to the WAL (docs/benchmarks.md, P2). Two ids
/// may share a key: every lookup compares the id as well (`trace_key = ? AND trace_id = ?`).
///
/// The value is stored, so it never changes: FNV-1a 64 (offset basis 0xcbf29ce484222325, prime
/// 0x100000001b3), documented in `schema/projections/004_trace_spans.sql`.
enum TraceKey {
    static func of(_ traceId: String) -> Int64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in traceId.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        return Int64(bitPattern: hash)
    }

    /// `custody_trace_key(trace_id)` in SQL, for migrations.
    static let function = DatabaseFunction("custody_trace_key", argumentCount: 1, pure: true) { values in
        String.fromDatabaseValue(values[0].databaseValue).map(TraceKey.of)
    }
}
