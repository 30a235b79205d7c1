import GRDB

/// The traces numbered since `trace_keys` was last written (`id > throughId`), by trace id, in
/// memory: together with `trace_keys` they find any trace's row.
///
/// Rules:
/// - It mirrors committed rows: ``SQLiteProjectionStore`` adds a batch's new traces after its
///   transaction commits, empties it when a transaction also wrote them all to `trace_keys`
///   (``SQLiteProjectionStore/keysWrittenPerMerge``), and loads it from `trace_summaries` when it opens
///   or replaces its contents. So it holds at most about ``SQLiteProjectionStore/keysWrittenPerMerge``
///   traces, and an open reads at most that many rows.
/// - A trace's number never changes, so a number found here stays right whatever the database
///   snapshot a reader then takes; a trace not found here was written to `trace_keys` before it
///   was removed, so a snapshot taken after the lookup finds it there.
struct RecentTraces: Sendable {
    /// Every trace with `id <= throughId` is in `trace_keys`.
    private(set) var throughId: Int64 = 0
    private var numbers: [String: Int64] = [:]

    var count: Int { numbers.count }

    func number(of traceId: String) -> Int64? {
        numbers[traceId]
    }

    mutating func add(_ traceId: String, number: Int64) {
        numbers[traceId] = number
    }

    /// Takes the traces of `other` too (keeping this `throughId`).
    mutating func add(_ other: RecentTraces) {
        numbers.merge(other.numbers) { mine, _ in mine }
    }

    /// A trace's row (`s`) found by key through `trace_keys`; arguments: `TraceKey.of(id)`, id.
    /// For the traces not in memory.
    static let byKey = "FROM trace_keys k JOIN trace_summaries s ON s.id = k.id WHERE k.trace_key = ? AND s.trace_id = ?"

    /// Everything up to `throughId` is now in `trace_keys`.
    mutating func indexed(through throughId: Int64) {
        self.throughId = throughId
        numbers.removeAll(keepingCapacity: true)
    }

    /// Reads the state of `db`: its `through_id` and the traces after it.
    static func load(_ db: Database) throws -> RecentTraces {
        var recent = RecentTraces()
        recent.throughId = try Int64.fetchOne(db, sql: "SELECT through_id FROM trace_keys_indexed") ?? 0
        let rows = try Row.fetchCursor(db, sql: "SELECT id, trace_id FROM trace_summaries WHERE id > ?", arguments: [recent.throughId])
        while let row = try rows.next() {
            recent.numbers[row[1]] = row[0]
        }
        return recent
    }

    /// Writes every trace after `throughId` to `trace_keys`, sorted (within the caller's
    /// transaction), and returns the new `through_id`.
    static func writeKeys(_ db: Database, after throughId: Int64) throws -> Int64 {
        try db.execute(
            sql: "INSERT INTO trace_keys (trace_key, id) SELECT trace_key, id FROM trace_summaries WHERE id > ? ORDER BY trace_key, id",
            arguments: [throughId]
        )
        let through = try Int64.fetchOne(db, sql: "SELECT COALESCE(MAX(id), ?) FROM trace_summaries", arguments: [throughId]) ?? throughId
        try db.execute(sql: "UPDATE trace_keys_indexed SET through_id = ?", arguments: [through])
        return through
    }
}
