import CustodyLog
import CustodyLogTesting
import Foundation
import NIOCore
import Testing

/// Power loss at every point of a run, through the fault-injecting file layer: after the crash,
/// every acknowledged append is readable, nothing unacknowledged appears half-written, and seqs
/// have no gaps.
@Suite struct CrashSimulationTests {
    /// Small segments, a dense index, frequent recovery points and small dictionaries, so a short
    /// run crosses segment rolls, index writes, recovery-point renames and the writing of each
    /// segment's dictionary before its first codec 2 batch.
    static let configuration: LogConfiguration = {
        var configuration = LogConfiguration(
            fsync: .always,
            segmentBytes: 2048,
            indexIntervalBytes: 128,
            batchBytes: 512,
            recoveryPointIntervalBytes: 1024
        )
        configuration.dictionaryBytes = 256
        return configuration
    }()

    struct Outcome {
        /// seq → payload of every acknowledged record.
        var acknowledged: [UInt64: String] = [:]
        /// Every payload that was handed to `append`, acknowledged or not.
        var submitted: Set<String> = []
    }

    /// One appender, appends of 1–3 records; stops at the first failure.
    static func runSequential(directory: String, fileSystem: any LogFileSystem) async -> Outcome {
        var outcome = Outcome()
        guard let log = try? await openLog(directory: directory, configuration: configuration, fileSystem: fileSystem) else {
            return outcome
        }
        for i in 0..<40 {
            let texts = (0...(i % 3)).map { "record \(i).\($0) " + String(repeating: "abcdefgh", count: 4 + i % 7) }
            outcome.submitted.formUnion(texts)
            guard let receipt = try? await log.append(payloads(texts)) else { break }
            for (offset, seq) in receipt.seqs.enumerated() { outcome.acknowledged[seq] = texts[offset] }
        }
        await log.close()
        return outcome
    }

    /// Reopens after the crash and checks the promises; returns the number of records found.
    @discardableResult
    static func checkAfterCrash(directory: String, outcome: Outcome, context: String) async throws -> Int {
        let log: SegmentLog
        do {
            log = try await openLog(directory: directory, configuration: configuration)
        } catch {
            Issue.record("\(context): the log did not open after the crash: \(error)")
            return 0
        }
        let records = try await readAll(log)
        for (position, record) in records.enumerated() where record.seq != UInt64(position + 1) {
            Issue.record("\(context): seq \(record.seq) at position \(position): seqs have a gap")
            break
        }
        for record in records where !outcome.submitted.contains(record.payload.text) {
            Issue.record("\(context): seq \(record.seq) holds bytes that were never appended: \(record.payload.text.prefix(40))")
        }
        let present = Dictionary(uniqueKeysWithValues: records.map { ($0.seq, $0.payload.text) })
        for (seq, text) in outcome.acknowledged where present[seq] != text {
            Issue.record("\(context): acknowledged seq \(seq) is \(present[seq].map { "\"\($0.prefix(30))\"" } ?? "missing")")
        }
        // The log goes on where it stopped.
        let next = try await log.append(ByteBuffer(string: "after the crash"))
        #expect(next.firstSeq == UInt64(records.count + 1), "\(context)")
        await log.close()
        let verification = try LogDirectory(path: directory).verify()
        #expect(verification.isClean, "\(context): \(verification.damage)")
        return records.count
    }

    @Test func everyCrashPointOfASequentialRun() async throws {
        // Count the mutating file operations of a whole run, then crash at each of them in turn.
        let probe = TemporaryDirectory("crash-probe")
        let counter = FaultInjectingFileSystem()
        let full = await Self.runSequential(directory: probe.path, fileSystem: counter)
        // The run writes segment dictionaries, so the crash points include theirs.
        let batches = try LogSurgery(directory: probe.path).segments().flatMap(\.batches)
        #expect(batches.contains { $0.header.codec == .lz4Dictionary })
        probe.remove()
        let operations = counter.mutatingOperationCount
        #expect(full.acknowledged.count > 60)
        #expect(operations > 100)

        var crashesWithData = 0
        for point in 0..<operations {
            let directory = TemporaryDirectory("crash")
            defer { directory.remove() }
            let fileSystem = FaultInjectingFileSystem(seed: UInt64(point))
            fileSystem.crash(afterOperations: point)
            let outcome = await Self.runSequential(directory: directory.path, fileSystem: fileSystem)
            try fileSystem.simulateCrash(seed: UInt64(point) &* 7919)
            let found = try await Self.checkAfterCrash(directory: directory.path, outcome: outcome, context: "crash at operation \(point)")
            if found > 0 { crashesWithData += 1 }
        }
        #expect(crashesWithData > operations / 2)
    }

    @Test(arguments: [FsyncPolicy.always, .interval(milliseconds: 2)])
    func randomCrashesDuringConcurrentAppends(policy: FsyncPolicy) async throws {
        var configuration = Self.configuration
        configuration.fsync = policy
        for round in 0..<40 {
            let directory = TemporaryDirectory("crash-concurrent")
            defer { directory.remove() }
            let seed = UInt64(round) &+ 1000
            let fileSystem = FaultInjectingFileSystem(seed: seed)
            var random = SplitMix64(seed: seed)
            fileSystem.crash(afterOperations: 10 + Int(random.next(upperBound: 400)))
            let log = try await openLog(directory: directory.path, configuration: configuration, fileSystem: fileSystem)
            let results = await withTaskGroup(of: Outcome.self) { group in
                for appender in 0..<6 {
                    group.addTask {
                        var outcome = Outcome()
                        for i in 0..<200 {
                            let texts = (0...(i % 4)).map { "a\(appender) r\(i).\($0) " + String(repeating: "xyz", count: 5 + (i + appender) % 11) }
                            outcome.submitted.formUnion(texts)
                            guard let receipt = try? await log.append(payloads(texts)) else { break }
                            for (offset, seq) in receipt.seqs.enumerated() { outcome.acknowledged[seq] = texts[offset] }
                        }
                        return outcome
                    }
                }
                var merged = Outcome()
                for await outcome in group {
                    merged.acknowledged.merge(outcome.acknowledged) { a, _ in a }
                    merged.submitted.formUnion(outcome.submitted)
                }
                return merged
            }
            await log.close()
            try fileSystem.simulateCrash(seed: seed &* 31)
            var expected = results
            if policy != .always {
                // Acknowledged before fsync: a power loss may take a suffix of them, by definition.
                expected.acknowledged = [:]
            }
            try await Self.checkAfterCrash(directory: directory.path, outcome: expected, context: "\(policy) round \(round)")
        }
    }
}
