import CustodyCore
import CustodyLog
import CustodyLogTesting
import Foundation
import Testing

/// R1 for the projections: a real process appending span events with the projector running is
/// killed with SIGKILL at random moments (mid-transaction, mid-append); after each kill the
/// projections resume from their checkpoint, and in the end they equal a rebuild, row by row.
@Suite struct ProjectionCrashTests {
    static var rounds: Int { Int(ProcessInfo.processInfo.environment["CUSTODY_KILL_ROUNDS"] ?? "") ?? 4 }

    @Test func killMinusNineNeverAppliesAnEventTwiceOrLosesOne() async throws {
        let executable = CustodyExecutable.path
        try #require(FileManager.default.isExecutableFile(atPath: executable))
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("custody-projection-kill-\(UUID().uuidString)").path
        defer { removeDataDirectory(directory) }
        var random = SplitMix64(seed: UInt64(Date().timeIntervalSince1970))
        var checkpointsSeen: [UInt64] = []
        for round in 0..<Self.rounds {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = ["log", "stress", "--data-dir", directory, "--project", "--appenders", "4", "--batch", "\(1 + round % 3 * 20)"]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            try await Task.sleep(for: .milliseconds(500 + Int(random.next(upperBound: 1000))))
            kill(process.processIdentifier, SIGKILL)
            try await ChildProcess.exit(process)
            #expect(process.terminationReason == .uncaughtSignal)

            // Resume from the checkpoint the kill left, and catch up.
            let log = try await SegmentLog.open(directory: directory)
            let store = try SQLiteProjectionStore(path: ProjectionPaths.database(in: directory))
            let checkpoint = try await store.appliedSeq()
            let head = await log.lastSeq
            #expect(checkpoint <= head, "round \(round): the projections are ahead of the log")
            checkpointsSeen.append(checkpoint)
            try await Projector(log: log, store: store).catchUp()
            #expect(try await store.appliedSeq() == head)
            try store.closeDatabase()
            await log.close()
        }
        // The projector had applied something before being killed in most rounds.
        #expect(checkpointsSeen.filter { $0 > 0 }.count >= Self.rounds / 2)

        let log = try await SegmentLog.open(directory: directory)
        let store = try SQLiteProjectionStore(path: ProjectionPaths.database(in: directory))
        let incremental = try await store.dump()
        try store.closeDatabase()
        let rebuiltPath = directory + "/rebuilt.sqlite"
        _ = try await ProjectionRebuild.rebuild(log: log, databasePath: rebuiltPath, snapshots: nil)
        let rebuiltStore = try SQLiteProjectionStore(path: rebuiltPath)
        let rebuilt = try await rebuiltStore.dump()
        try rebuiltStore.closeDatabase()
        await log.close()
        for table in ["operation_logs", "trace_summaries"] {
            #expect((incremental[table] ?? []).count == (rebuilt[table] ?? []).count, "\(table)")
            #expect(incremental[table] == rebuilt[table], "\(table) differs from a rebuild")
            #expect(!(incremental[table] ?? []).isEmpty)
        }
    }
}
