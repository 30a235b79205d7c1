import CustodyCore
import CustodyLog
import CustodyLogTesting
import Foundation
import GRDB
import Testing

/// R12 in the core: the projections' checkpoint is a witness of what was acknowledged. A log cut
/// back behind it — here with its recovery point gone too, so the log alone would call the cut a
/// torn tail — refuses to open; the repair records the loss as a `log.loss` event, rebuilds the
/// projections from the log before anything reads them, and numbers new events after the
/// checkpoint. A repair that stopped half-way (the loss recorded, no event yet) is finished by
/// the next open.
@Suite struct DataLossRepairTests {
    static func runtime(_ directory: String, repair: Bool = false) async throws -> CoreRuntime {
        var configuration = CoreRuntime.Configuration()
        configuration.damagePolicy = repair ? .quarantine : .refuse
        return try await CoreRuntime.open(directory: directory, configuration: configuration)
    }

    @Test func projectionsAheadOfTheLogAreALossThatRepairRebuilds() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("custody-loss-\(UUID().uuidString)").path
        defer { removeDataDirectory(directory) }
        let runtime = try await Self.runtime(directory)
        var seqs: [(trace: String, seq: UInt64)] = []
        for i in 0..<30 {
            let recorded = try await runtime.logs.recordLog(
                .many([SpanInput(traceId: "t\(i)", source: "agent-factory", operation: "op")]),
                request: RequestTrace(traceId: "r\(i)")
            )
            seqs.append(("t\(i)", recorded.firstSeq))
        }
        await runtime.close()
        let applied = try SQLiteProjectionStore.appliedSeq(ofDatabaseAt: ProjectionPaths.database(in: directory))
        #expect(applied >= seqs.last!.seq)

        // Cut the log back to the middle of trace t20's batch, and remove the recovery point.
        try FileManager.default.removeItem(atPath: directory + "/recovery-point")
        let segment = try #require(try FileManager.default.contentsOfDirectory(atPath: directory).first { $0.hasSuffix(".log") })
        let records = try LogDirectory(path: directory).inspect()
        #expect(records.segments.count == 1)
        let cutAt = try Self.offset(ofBatchHolding: seqs[20].seq, in: directory + "/" + segment) + 10
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: directory + "/" + segment))
        try handle.truncate(atOffset: UInt64(cutAt))
        try handle.close()

        do {
            _ = try await Self.runtime(directory)
            Issue.record("opened a log behind its projections")
        } catch let error as LogError {
            #expect(error.code == .dataLoss)
            #expect(error.message.contains("projections' checkpoint") && error.message.contains("–\(applied)"), "\(error.message)")
        }

        let repaired = try await Self.runtime(directory, repair: true)
        let losses = repaired.log.recordedLosses
        #expect(losses.count == 1 && losses.first?.lastLostSeq == applied)
        let firstLost = try #require(losses.first?.firstLostSeq)
        #expect(firstLost <= seqs[20].seq)
        // The projections were rebuilt: no trace of a lost event is left, every other one is.
        for (trace, seq) in seqs {
            let found = try? await repaired.traces.getTrace(trace)
            #expect((found != nil) == (seq < firstLost), "\(trace) at \(seq)")
        }
        let lossRows = try await repaired.sqliteStore.read { db in try Int64.fetchAll(db, sql: "SELECT last_seq FROM log_losses") }
        #expect(lossRows == [Int64(applied)])
        let next = try await repaired.logs.recordLog(
            .many([SpanInput(traceId: "after", source: "agent-factory")]),
            request: RequestTrace(traceId: "ra")
        )
        #expect(next.firstSeq > applied)
        await repaired.close()

        // Opening again: nothing more to repair, one log.loss event.
        let reopened = try await Self.runtime(directory)
        var lossEvents = 0
        for record in try await reopened.log.read(from: applied + 1, maxRecords: 100_000) {
            if case .logLoss = try EventCodec.decode(record).body { lossEvents += 1 }
        }
        #expect(lossEvents == 1)
        #expect(try await reopened.traces.getTrace("after").spans.count == 1)
        await reopened.close()
    }

    /// The offset of the batch that holds `seq` in a segment file (walking batch headers).
    static func offset(ofBatchHolding seq: UInt64, in path: String) throws -> Int {
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        var offset = 0
        while offset + 48 <= bytes.count {
            let first = bytes[offset + 8..<offset + 16].withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
            let count = bytes[offset + 16..<offset + 20].withUnsafeBytes { UInt64(UInt32(littleEndian: $0.loadUnaligned(as: UInt32.self))) }
            if seq >= first && seq < first + count { return offset }
            let stored = bytes[offset + 40..<offset + 44].withUnsafeBytes { Int(UInt32(littleEndian: $0.loadUnaligned(as: UInt32.self))) }
            // A chained batch (format version 2) ends with its 32-byte chain value.
            let trailer = bytes[offset + 4] >= 2 ? 32 : 0
            offset += 48 + stored + trailer
        }
        throw CocoaError(.fileReadCorruptFile)
    }
}
