/// The `trace_summaries` rows the projector wrote last, kept in memory so that merging a batch's
/// spans into a trace's row is arithmetic in Swift and one plain write, not a read and a JSON
/// merge in SQL.
///
/// Rules:
/// - It holds only committed rows: ``ProjectionStore`` records a batch's rows here after its
///   transaction commits, and empties it when the table's contents are replaced (an adopted
///   rebuild). A row missing here is read from the database.
/// - Bounded: two generations of at most `capacity` traces each. A lookup finds a trace in
///   either; when the young one is full it becomes the old one and the old one is dropped, so a
///   trace still receiving spans stays in memory while finished ones age out, at O(1) per update
///   and with no sweep.
struct TraceSummaryCache: Sendable {
    struct Entry: Sendable {
        /// `trace_summaries.id`: the trace's number (0 until the row is written).
        var id: Int64
        var summary: TraceSummaryRecord
        var lastSeq: Int64
    }

    let capacity: Int
    private var young: [String: Entry] = [:]
    private var old: [String: Entry] = [:]

    init(capacity: Int = 32_768) {
        self.capacity = capacity
    }

    func entry(_ traceId: String) -> Entry? {
        young[traceId] ?? old[traceId]
    }

    mutating func record(_ entries: [(traceId: String, entry: Entry)]) {
        for (traceId, entry) in entries {
            if young.count >= capacity {
                old = young
                young = [:]
                young.reserveCapacity(capacity)
            }
            young[traceId] = entry
        }
    }

    mutating func remove(_ traceIds: Set<String>) {
        for traceId in traceIds {
            young[traceId] = nil
            old[traceId] = nil
        }
    }

    mutating func removeAll() {
        young = [:]
        old = [:]
    }
}
