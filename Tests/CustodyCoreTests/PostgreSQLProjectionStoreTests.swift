import CustodyLog
import CustodyLogTesting
import CustodyServerTesting
import Foundation
import GRDB
import Logging
import NIOCore
import PostgresNIO
import Testing

@testable import CustodyCore

/// The projections on PostgreSQL (docs/projections.md, "On PostgreSQL") against a real, throwaway
/// PostgreSQL: the same varied log projected into PostgreSQL — in batches of every size, cut
/// short again and again, by two nodes in turn — answers every read as a rebuild into SQLite
/// does; one writer at a time, each event applied once; an online rebuild swaps schemas.
@Suite(.serialized) struct PostgreSQLProjectionStoreTests {
    static let logger = Logger(label: "test.postgresql")

    static func location(_ server: PostgreSQLServer, schema: String) -> PostgreSQLLocation {
        PostgreSQLLocation(host: "127.0.0.1", port: server.port, username: PostgreSQLServer.user, database: "postgres", schema: schema)
    }

    /// A log of ~15k varied events, plus spans whose names need COPY's escapes.
    static func makeLog(_ directory: TemporaryDirectory) async throws -> SegmentLog {
        let log = try await SegmentLog.open(directory: directory.file("log"), configuration: LogConfiguration(segmentBytes: 256 << 10))
        var generator = ScenarioGenerator(seed: 2211)
        var random = SplitMix64(seed: 2212)
        var appended = 0
        while appended < 15_000 {
            let count = 1 + Int(random.next(upperBound: 300))
            _ = try await log.append((0..<count).map { _ in EventCodec.encode(generator.next()) })
            appended += count
        }
        let awkward = ["tab\there", "back\\slash", "line\nbreak", "carriage\rreturn", "é ✓ 漢字", "\\N", "quote'\"", "%_like"]
        _ = try await log.append(
            awkward.enumerated().map { index, name in
                EventCodec.encode(
                    .span(Span(traceId: "awkward-\(index % 3)", spanId: name, source: name, stage: name, operation: name, timestamp: Int64(index)))
                )
            }
        )
        return log
    }

    @Test func projectionsCutShortByTwoNodesAnswerAsARebuildIntoSQLite() async throws {
        let server = try await PostgreSQLServer()
        defer { server.stop() }
        let directory = TemporaryDirectory("pg-projections")
        defer { directory.remove() }
        let log = try await Self.makeLog(directory)
        let head = await log.lastSeq
        let location = Self.location(server, schema: "custody_test")
        var random = SplitMix64(seed: 99)
        // Rounds of a projector with a random batch size, stopped wherever it is: its store is
        // closed with no clean-up (its session ends, the lock with it), and the next round — another
        // "node" — resumes from the checkpoint.
        var rounds = 0
        while try await PostgreSQLProjectionStore.withStore(at: location, logger: Self.logger, { try await $0.appliedSeq() }) < head {
            rounds += 1
            try await PostgreSQLProjectionStore.withStore(at: location, logger: Self.logger) { store in
                let projector = Projector(log: log, store: store, batchSize: 1 + Int(random.next(upperBound: 2500)))
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { try await projector.run() }
                    try await Task.sleep(for: .milliseconds(100 + Int(random.next(upperBound: 400))))
                    group.cancelAll()
                    _ = try? await group.next()
                }
            }
            #expect(rounds < 200, "the projections do not progress")
            if rounds >= 200 { break }
        }
        #expect(rounds > 2, "the rounds were not cut short")
        let rebuiltPath = directory.file("rebuilt.sqlite")
        _ = try await ProjectionRebuild.rebuild(log: log, databasePath: rebuiltPath, snapshots: nil)
        let sqlite = try SQLiteProjectionStore(path: rebuiltPath)
        try await PostgreSQLProjectionStore.withStore(at: location, logger: Self.logger) { postgres in
            #expect(try await postgres.appliedSeq() == head)
            let differences = try await ProjectionComparison.differences(sqlite, postgres)
            #expect(differences.isEmpty, "\(differences.count) differences: \(differences.prefix(5))")
        }
        try await sqlite.close()
        await log.close()
    }

    @Test func oneNodeWritesAtATimeAndAnotherTakesOverFromItsCheckpoint() async throws {
        let server = try await PostgreSQLServer()
        defer { server.stop() }
        let directory = TemporaryDirectory("pg-writers")
        defer { directory.remove() }
        let log = try await Self.makeLog(directory)
        let location = Self.location(server, schema: "custody")
        try await PostgreSQLProjectionStore.withStore(at: location, logger: Self.logger) { first in
            try await PostgreSQLProjectionStore.withStore(at: location, logger: Self.logger) { second in
                #expect(try await first.mayApply())
                #expect(try await !second.mayApply())
                // Both projectors run: the first applies, the second follows its checkpoint.
                let firstProjector = Projector(log: log, store: first, batchSize: 500)
                let secondProjector = Projector(log: log, store: second, batchSize: 700)
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { try await secondProjector.run() }
                    group.addTask { try await firstProjector.run() }
                    let head = await log.lastSeq
                    try await secondProjector.waitUntilApplied(head, timeout: .seconds(60))
                    #expect(try await !second.mayApply())
                    // A batch the second node would apply is refused: the first holds the lock.
                    let refused = ProjectionBatch([], checkpointSeq: head + 1, checkpointTime: 0)
                    await #expect(throws: CoreError.self) { try await second.apply(refused) }
                    // The first node dies (its session ends): the second takes over and applies
                    // what comes next.
                    group.cancelAll()
                    while (try? await group.next()) != nil {}
                }
                await first.writer.close()
                var generator = ScenarioGenerator(seed: 5)
                _ = try await log.append((0..<3000).map { _ in EventCodec.encode(generator.next()) })
                let head = await log.lastSeq
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { try await secondProjector.run() }
                    try await secondProjector.waitUntilApplied(head, timeout: .seconds(30))
                    #expect(try await second.mayApply())
                    group.cancelAll()
                    _ = try? await group.next()
                }
                // A writer that does not know it lost the lock (here: none) cannot apply a batch
                // twice: the guarded checkpoint refuses it and nothing changes.
                let stale = PostgreSQLWriter(
                    configuration: PostgreSQLProjectionStore.connectionConfiguration(location, schema: location.schema),
                    schema: location.schema,
                    lockKey: nil,
                    logger: Self.logger
                )
                let records = try await log.read(from: head - 10, maxRecords: 5)
                let events = try records.map { try EventCodec.decode($0) }
                let counted = "SELECT COUNT(*) FROM operation_logs"
                let before = try await second.rows(PostgresQuery(unsafeSQL: counted))[0][0].decode(Int64.self)
                await #expect(throws: CoreError.self) {
                    try await stale.apply(ProjectionBatch(events, checkpointSeq: records.last!.seq, checkpointTime: 0))
                }
                await stale.close()
                #expect(try await second.rows(PostgresQuery(unsafeSQL: counted))[0][0].decode(Int64.self) == before)
                #expect(try await second.appliedSeq() == head)

                let rebuiltPath = directory.file("rebuilt.sqlite")
                _ = try await ProjectionRebuild.rebuild(log: log, databasePath: rebuiltPath, snapshots: nil)
                let sqlite = try SQLiteProjectionStore(path: rebuiltPath)
                #expect(try await ProjectionComparison.differences(sqlite, second).prefix(5) == [])

                // An online rebuild into custody_rebuild, swapped in by renaming the schemas.
                let report = try await ProjectionRebuild.rebuildOnline(projector: secondProjector, snapshots: nil)
                #expect(report.events == head)
                #expect(try await ProjectionComparison.differences(sqlite, second).prefix(5) == [])
                let schemas = try await second.rows("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'custody%' ORDER BY 1")
                #expect(try schemas.map { try $0[0].decode(String.self) } == ["custody"])
                try await sqlite.close()
            }
        }
        await log.close()
    }

    /// Retention on PostgreSQL: pruning the spans of a deleted range, and a rebuild that starts
    /// from the state snapshot, leave the same answers as on SQLite.
    /// A query on a connection whose server session has ended fails at once, even after the
    /// channel has closed and dropped its handlers — postgres-nio's own `query` would wait for
    /// good there (the hang when PostgreSQL was killed between two statements of a batch).
    @Test func aQueryOnAClosedConnectionFailsInsteadOfWaiting() async throws {
        let server = try await PostgreSQLServer()
        defer { server.stop() }
        let configuration = PostgreSQLProjectionStore.connectionConfiguration(Self.location(server, schema: "public"), schema: "public")
        let connection = try await PostgresConnection.connect(configuration: configuration, id: 1, logger: Self.logger)
        let backend = try await connection.queryIfOpen("SELECT pg_backend_pid()", logger: Self.logger).collect()[0].decode(Int32.self)
        _ = try await server.psql("SELECT pg_terminate_backend(\(backend))")
        try await connection.closeFuture.get()
        #expect(connection.isClosed)
        await #expect {
            _ = try await connection.queryIfOpen("SELECT 1", logger: Self.logger)
        } throws: { error in
            (error as? CoreError)?.code == .storageUnavailable
        }
    }

    @Test func retentionPrunesAndRebuildsFromASnapshotAsOnSQLite() async throws {
        let server = try await PostgreSQLServer()
        defer { server.stop() }
        let directory = TemporaryDirectory("pg-retention")
        defer { directory.remove() }
        let log = try await Self.makeLog(directory)
        let head = await log.lastSeq
        let snapshots = StateSnapshots(dataDirectory: directory.path)
        let cut = head / 2
        let snapshot = snapshots.path(named: try await snapshots.build(through: cut, log: log))

        let sqlitePath = directory.file("live.sqlite")
        _ = try await ProjectionRebuild.rebuild(log: log, databasePath: sqlitePath, snapshots: nil)
        let sqlite = try SQLiteProjectionStore(path: sqlitePath)
        let sqlitePruning = try await sqlite.pruneSpans(through: cut, snapshotAt: snapshot)
        #expect(sqlitePruning.spans > 1000 && sqlitePruning.traces > 100)
        try await PostgreSQLProjectionStore.withStore(at: Self.location(server, schema: "kept"), logger: Self.logger) { postgres in
            try await Projector(log: log, store: postgres, batchSize: 1500).catchUp()
            let pruning = try await postgres.pruneSpans(through: cut, snapshotAt: snapshot)
            #expect(pruning == sqlitePruning)
            #expect(try await postgres.pruneSpans(through: cut, snapshotAt: snapshot) == SpanPruning(), "a second pruning found more")
            let differences = try await ProjectionComparison.differences(sqlite, postgres)
            #expect(differences.isEmpty, "after pruning: \(differences.count) differences, first \(differences.prefix(3))")

            // A rebuild from the snapshot and the log after it, on both, swapped in online on PostgreSQL.
            let rebuiltPath = directory.file("from-snapshot.sqlite")
            let target = try SQLiteProjectionStore(path: rebuiltPath, durability: .deferred)
            _ = try await target.loadSnapshot(at: snapshot)
            try await Projector(log: log, store: target).catchUp()
            try await target.close()
            let fromSnapshot = try SQLiteProjectionStore(path: rebuiltPath)
            let rebuilt = try await postgres.makeRebuildTarget()
            #expect(try await rebuilt.loadSnapshot(at: snapshot) == cut)
            try await Projector(log: log, store: rebuilt).catchUp()
            try await rebuilt.finishRebuild()
            #expect(try await postgres.replaceContents(with: rebuilt) == head)
            let afterRebuild = try await ProjectionComparison.differences(fromSnapshot, postgres)
            #expect(afterRebuild.isEmpty, "after a rebuild from the snapshot: \(afterRebuild.count) differences, first \(afterRebuild.prefix(3))")
            try await fromSnapshot.close()
        }
        try await sqlite.close()
        await log.close()
    }
}
