import CustodyLog
import Foundation
import GRDB
import NIOCore

/// The snapshots of the state projections that retention takes before it deletes any of the log
/// (docs/operations.md, "Retention"): `snapshots/state-<seq>.sqlite` beside the segments, each a
/// database of the projection schema holding the state tables (``SQLiteProjectionStore/stateTables``)
/// as of `<seq>` — exactly what applying every event up to `<seq>` gives them — and no spans.
///
/// Rules:
/// - A snapshot is built from the newest one before it and the log between the two (so a pass
///   reads only what it is about to delete), under a temporary name, synchronized, and renamed;
///   a name in the directory is always a whole snapshot.
/// - A rebuild after retention starts from the snapshot at the log's first seq − 1, then applies
///   the log from there; time travel into the retained range starts from it too.
public struct StateSnapshots: Sendable {
    /// The directory holding them.
    public let directory: String

    public init(dataDirectory: String) {
        directory = (dataDirectory.hasSuffix("/") ? dataDirectory : dataDirectory + "/") + "snapshots"
    }

    /// The file name of the snapshot as of `seq`.
    public static func name(seq: UInt64) -> String {
        let digits = String(seq)
        return "state-" + String(repeating: "0", count: max(0, 20 - digits.count)) + digits + ".sqlite"
    }

    public func path(named name: String) -> String { directory + "/" + name }

    /// Every whole snapshot, oldest first.
    public func all() -> [(seq: UInt64, name: String)] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.compactMap { name -> (UInt64, String)? in
            guard name.hasPrefix("state-"), name.hasSuffix(".sqlite"), let seq = UInt64(name.dropFirst(6).dropLast(7)) else { return nil }
            return (seq, name)
        }.sorted { $0.0 < $1.0 }
    }

    /// The snapshot a log starting at `firstSeq` is rebuilt from: none for a log that starts at 1;
    /// else the oldest at or after `firstSeq − 1` (after a pass that stopped half-way, the log may
    /// still start before the newest snapshot).
    public func snapshot(forLogStartingAt firstSeq: UInt64) throws -> (seq: UInt64, path: String)? {
        guard firstSeq > 1 else { return nil }
        guard let found = all().first(where: { $0.seq >= firstSeq - 1 }) else {
            throw CoreError(
                .internalError,
                "the log starts at seq \(firstSeq) after retention, but \(directory) has no snapshot of the state before it: the projections cannot be rebuilt"
            )
        }
        return (found.seq, path(named: found.name))
    }

    /// Builds the snapshot as of `seq` (idempotent: an existing one is kept) and returns its name.
    /// `log` must hold everything after the newest snapshot before `seq` (or from seq 1).
    public func build(through seq: UInt64, log: any EventLog) async throws -> String {
        let name = Self.name(seq: seq)
        let final = path(named: name)
        if FileManager.default.fileExists(atPath: final) { return name }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let temporary = final + ".tmp"
        SQLiteProjectionStore.removeFiles(at: temporary)
        var start: UInt64 = 1
        if let previous = all().last(where: { $0.seq < seq }) {
            try FileManager.default.copyItem(atPath: path(named: previous.name), toPath: temporary)
            start = previous.seq + 1
        }
        let first = await log.firstSeq
        guard first <= start else {
            SQLiteProjectionStore.removeFiles(at: temporary)
            throw CoreError(.internalError, "the log starts at seq \(first), but the newest snapshot before seq \(seq) ends at \(start - 1)")
        }
        let store = try SQLiteProjectionStore(path: temporary, durability: .deferred)
        do {
            var next = start
            while next <= seq {
                let records = try await log.read(from: next, maxRecords: 32_768).filter { $0.seq <= seq }
                guard let last = records.last else { break }
                var events: [Event] = []
                var traces = Set<Int64>()
                for record in records {
                    if let traceId = Self.spanTraceId(record.payload) {
                        traces.insert(TraceKey.of(traceId))
                    } else if let event = try? EventCodec.decode(record) {
                        events.append(event)
                    }
                }
                try await store.apply(ProjectionBatch(events, checkpointSeq: last.seq, checkpointTime: last.timestamp))
                try await store.retire(traceKeys: traces, throughSeq: seq)
                next = last.seq + 1
            }
            try await store.close()
            try store.synchronizeFile()
        } catch {
            try? store.closeDatabase()
            SQLiteProjectionStore.removeFiles(at: temporary)
            throw error
        }
        try PosixFileSystem().rename(from: temporary, to: final)
        try PosixFileSystem().synchronizeDirectory(at: directory)
        return name
    }

    /// Removes every snapshot but `keep` (and leftovers of interrupted builds).
    public func removeAll(except keep: String) {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        for name in names where name != keep && name.hasPrefix("state-") {
            try? FileManager.default.removeItem(atPath: path(named: name))
        }
    }

    /// A task as a snapshot holds it.
    public func task(uuid: String, inSnapshot name: String) throws -> TaskRecord? {
        var configuration = Configuration()
        configuration.readonly = true
        let queue = try DatabaseQueue(path: path(named: name), configuration: configuration)
        defer { try? queue.close() }
        return try queue.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM tasks WHERE uuid = ?", arguments: [uuid]).map(TaskRecord.init(row:))
        }
    }

    /// The trace id of a record that is a span, without decoding the rest; nil for other events.
    static func spanTraceId(_ payload: ByteBuffer) -> String? {
        var reader = EventReader(payload)
        guard (try? reader.byte()) == EventCodec.currentVersion, (try? reader.byte()) == EventType.span.rawValue else { return nil }
        return try? reader.string()
    }
}
