import CustodyLog
import CustodyLogTesting
import Foundation
import NIOCore
import Testing

/// ``LogBackupPoint``: copies taken while appenders keep writing and segments keep rolling are
/// each exactly the log up to the point's head — every record, the chain value, nothing after —
/// and a second copy into the same directory copies only what is new.
@Suite struct BackupPointTests {
    @Test func copiesTakenDuringAppendsAreExactPrefixes() async throws {
        let source = TemporaryDirectory("backup-source")
        let destination = TemporaryDirectory("backup-copy")
        defer {
            source.remove()
            destination.remove()
        }
        let log = try await openLog(directory: source.path, configuration: LogConfiguration(segmentBytes: 64 << 10))
        let appenders = Task {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for appender in 0..<8 {
                    group.addTask {
                        for round in 0..<300 {
                            _ = try await log.append(
                                payloads((0..<10).map { "appender \(appender) round \(round) record \($0) " + String(repeating: "x", count: 100) })
                            )
                        }
                    }
                }
                try await group.waitForAll()
            }
        }
        var reports: [LogBackupCopyReport] = []
        var heads: [ChainHead] = []
        // Copies while the appenders run (each once the log has passed a mark; 24,000 records in
        // all), into one directory, each after the previous one.
        for mark in [3_000, 9_000, 15_000, 21_000] as [UInt64] {
            while await log.lastSeq < mark { try await Task.sleep(for: .milliseconds(1)) }
            let point = try await log.backupPoint()
            let report = try point.copy(to: destination.path)
            reports.append(report)
            heads.append(point.head)
            // The copy is the log up to the point's head: verified, ending there, with its chain.
            let verification = try LogDirectory(path: destination.path).verify(
                claims: point.head.seq > 0 ? [ChainClaim(seq: point.head.seq, chain: point.head.chain, source: "the point")] : []
            )
            #expect(verification.isClean, "\(verification.damage)")
            #expect(point.head.seq >= mark)
            #expect(verification.chainHead?.seq == point.head.seq, "the copy ends at \(verification.chainHead?.seq ?? 0), not \(point.head.seq)")
            #expect(verification.claims.allSatisfy { $0.holds })
        }
        try await appenders.value
        // The last copy holds the records of the log up to its head, byte for byte.
        let head = heads.last!.seq
        let copy = try await openLog(directory: destination.path)
        let copied = try await readAll(copy)
        await copy.close()
        let original = try await readAll(log).prefix { $0.seq <= head }
        #expect(copied.map(\.seq) == original.map(\.seq))
        #expect(copied.map(\.payload) == original.map(\.payload))
        #expect(heads.map(\.seq) == heads.map(\.seq).sorted() && heads.first!.seq < head)
        // Later copies kept the segments the earlier ones had sealed.
        #expect(reports.dropFirst().contains { $0.filesKept > 0 }, "\(reports)")
        await log.close()
    }
}
