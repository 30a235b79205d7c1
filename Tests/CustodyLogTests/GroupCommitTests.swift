import CustodyLog
import CustodyLogTesting
import Foundation
import NIOCore
import Testing

@Suite struct GroupCommitTests {
    /// Concurrent appends share writes and fsyncs; every append still gets its own seqs.
    @Test func concurrentAppendsShareWritesAndFsyncs() async throws {
        let directory = TemporaryDirectory("group")
        defer { directory.remove() }
        let log = try await openLog(directory: directory.path)
        let receipts = try await withThrowingTaskGroup(of: [AppendReceipt].self) { group in
            for appender in 0..<64 {
                group.addTask {
                    var receipts: [AppendReceipt] = []
                    for i in 0..<20 { receipts.append(try await log.append(payloads(["\(appender)-\(i)"]))) }
                    return receipts
                }
            }
            var all: [AppendReceipt] = []
            for try await receipts in group { all += receipts }
            return all
        }
        let statistics = await log.status().statistics
        #expect(statistics.appends == 1280)
        #expect(Set(receipts.map(\.firstSeq)) == Set(1...1280))
        // Under fsync always every write is synchronized, and far fewer writes than appends happen.
        #expect(statistics.synchronizations == statistics.writes)
        #expect(statistics.writes < 1280 / 4, "\(statistics.writes) writes for 1280 appends")
        await log.close()
    }

    @Test func intervalPolicySynchronizesWithinTheInterval() async throws {
        let directory = TemporaryDirectory("interval")
        defer { directory.remove() }
        let clock = ManualLogClock()
        let log = try await openLog(directory: directory.path, configuration: LogConfiguration(fsync: .interval(milliseconds: 1000), clock: clock))
        for i in 0..<5 { _ = try await log.append(ByteBuffer(string: "r\(i)")) }
        let before = await log.status().statistics
        // No fsync per append: within one interval, none at all (the clock has not moved).
        #expect(before.writes == 5)
        #expect(before.synchronizations == 0, "\(before.synchronizations) fsyncs within one interval")
        // The timer is armed; once the interval passes, the written bytes are synchronized.
        try await waitUntil { clock.sleepers == 1 }
        clock.advance(by: .milliseconds(999))
        #expect(await log.status().statistics.synchronizations == 0)
        clock.advance(by: .milliseconds(1))
        try await waitUntil { await log.status().statistics.synchronizations >= 1 }
        await log.close()
        // Written with a policy that acknowledges before fsync: the batches say so.
        let bytes = try Data(contentsOf: URL(fileURLWithPath: directory.file(try directory.segments()[0])))
        #expect(bytes[6] & 2 == 2)
    }

    @Test func segmentsRollByAge() async throws {
        // A segment younger than its age limit is not rolled…
        let young = TemporaryDirectory("roll-young")
        defer { young.remove() }
        let youngClock = ManualLogClock()
        let log = try await openLog(directory: young.path, configuration: LogConfiguration(segmentAge: .seconds(600), clock: youngClock))
        for i in 0..<3 {
            _ = try await log.append(ByteBuffer(string: "r\(i)"))
            youngClock.advance(by: .seconds(199))
        }
        #expect(await log.status().segments.count == 1)
        await log.close()

        // …and one older than the limit is rolled before the next append is written.
        let old = TemporaryDirectory("roll-old")
        defer { old.remove() }
        let clock = ManualLogClock()
        let aging = try await openLog(directory: old.path, configuration: LogConfiguration(segmentAge: .milliseconds(200), clock: clock))
        _ = try await aging.append(ByteBuffer(string: "one"))
        clock.advance(by: .milliseconds(200))
        _ = try await aging.append(ByteBuffer(string: "two"))
        let segments = await aging.status().segments
        #expect(segments.map(\.baseSeq) == [1, 2])
        #expect(segments.map(\.sealed) == [true, false])
        await aging.close()
        // The sealed segment got its index files; names are the first seq, zero-padded.
        #expect(FileManager.default.fileExists(atPath: old.file("00000000000000000001.index")))
        #expect(FileManager.default.fileExists(atPath: old.file("00000000000000000001.timeindex")))
        #expect(try old.segments() == ["00000000000000000001.log", "00000000000000000002.log"])
    }

    /// After a clean close, opening checks no batch by checksum: the recovery point covers the
    /// whole log and only the batch headers are walked.
    @Test func theRecoveryPointLimitsWhatOpeningRescans() async throws {
        let directory = TemporaryDirectory("recovery-point")
        defer { directory.remove() }
        let log = try await openLog(directory: directory.path)
        for i in 0..<50 { _ = try await log.append(ByteBuffer(string: "record \(i)")) }
        await log.close()
        let reopened = try await openLog(directory: directory.path)
        #expect(reopened.recoveryReport.bytesVerified == 0)
        #expect(reopened.recoveryReport.bytesWalked > 0)
        for i in 50..<60 { _ = try await reopened.append(ByteBuffer(string: "record \(i)")) }
        // Gone without a close (as after a crash): only what came after the recovery point is checked.
        try FileManager.default.removeItem(atPath: directory.file("LOCK"))
        let walked = reopened.recoveryReport.bytesWalked
        let crashed = try await openLog(directory: directory.path)
        #expect(crashed.recoveryReport.bytesWalked == walked)
        #expect(crashed.recoveryReport.bytesVerified > 0)
        #expect(try await readAll(crashed).count == 60)
        await crashed.close()
        await reopened.close()
    }
}
