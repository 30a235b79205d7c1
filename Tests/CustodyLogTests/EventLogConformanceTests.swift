import CustodyLog
import CustodyLogTesting
import NIOCore
import Testing

/// ``SegmentLog`` against the guarantees every ``EventLog`` must give (`EventLogConformance`).
@Suite struct EventLogConformanceTests {
    @Test(arguments: EventLogConformance.checkNames)
    func segmentLog(_ check: String) async throws {
        let root = TemporaryDirectory("conformance")
        defer { root.remove() }
        let suite = EventLogConformance { name in try await openLog(directory: root.file(name)) }
        try await suite.run(check)
    }

    /// The same checks with a segment size that makes every few batches a new segment, so reads
    /// and lookups cross segment boundaries.
    @Test(arguments: EventLogConformance.checkNames)
    func segmentLogWithSmallSegments(_ check: String) async throws {
        let root = TemporaryDirectory("conformance-small")
        defer { root.remove() }
        let suite = EventLogConformance { name in
            try await openLog(directory: root.file(name), configuration: LogConfiguration(segmentBytes: 512, indexIntervalBytes: 64))
        }
        try await suite.run(check)
    }
}

/// The suite fails an engine that breaks a guarantee: a log that returns a record twice from
/// `read(seqs:)`, and one whose head runs ahead of what it acknowledged.
@Suite struct EventLogConformanceCatchesBrokenLogsTests {
    actor BrokenLog: EventLog {
        enum Defect { case duplicateReads, headAhead, chainOfWrongBytes }
        let base: SegmentLog
        let defect: Defect

        init(base: SegmentLog, defect: Defect) {
            self.base = base
            self.defect = defect
        }

        func append(_ payloads: [ByteBuffer], timestamp: Int64?, fence: AppendFence?) async throws -> AppendReceipt {
            try await base.append(payloads, timestamp: timestamp, fence: fence)
        }
        func read(from seq: UInt64, maxRecords: Int) async throws -> [LogRecord] { try await base.read(from: seq, maxRecords: maxRecords) }
        func read(seqs: [UInt64]) async throws -> [LogRecord] {
            let records = try await base.read(seqs: seqs)
            return defect == .duplicateReads ? records + records.prefix(1) : records
        }
        func waitForAppend(after seq: UInt64) async throws -> UInt64 { try await base.waitForAppend(after: seq) }
        func firstSeq(atOrAfter timestamp: Int64) async throws -> UInt64 { try await base.firstSeq(atOrAfter: timestamp) }
        var firstSeq: UInt64 { get async { await base.firstSeq } }
        var lastSeq: UInt64 { get async { await base.lastSeq + (defect == .headAhead ? 1 : 0) } }
        var chainHead: ChainHead {
            get async {
                let head = await base.chainHead
                return defect == .chainOfWrongBytes ? ChainHead(seq: head.seq, chain: head.chain.next(seq: 0, bytes: ByteBuffer())) : head
            }
        }
        func chainValue(after seq: UInt64) async throws -> ChainValue? { try await base.chainValue(after: seq) }
        nonisolated var recoveryReport: RecoveryReport { base.recoveryReport }
        nonisolated var recordedLosses: [QuarantineRecord] { base.recordedLosses }
        func status() async -> LogStatus { await base.status() }
        func close() async { await base.close() }
    }

    @Test(arguments: [
        (BrokenLog.Defect.duplicateReads, "readBySeqSetReturnsEachPresentSeqOnce"),
        (BrokenLog.Defect.headAhead, "seqsAreConsecutiveFromOne"),
        (BrokenLog.Defect.headAhead, "readersSeeOnlyAcknowledgedRecords"),
        (BrokenLog.Defect.chainOfWrongBytes, "hashChainCoversEveryRecordInOrder"),
    ])
    func brokenLogFails(_ defect: BrokenLog.Defect, _ check: String) async throws {
        let root = TemporaryDirectory("conformance-broken")
        defer { root.remove() }
        let suite = EventLogConformance { name in BrokenLog(base: try await openLog(directory: root.file(name)), defect: defect) }
        await #expect(throws: EventLogConformance.Failure.self) { try await suite.run(check) }
    }
}
