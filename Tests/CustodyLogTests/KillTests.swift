import CustodyLog
import CustodyLogTesting
import Foundation
import NIOCore
import NIOPosix
import Testing

/// A real process, really killed: `custody log stress` appends with 8 concurrent appenders (its
/// segments and their dictionaries made as it goes) and prints each acknowledged seq range; the
/// test kills it with SIGKILL at a random moment, reopens the log, and checks every acknowledged
/// seq. Rounds continue on the same directory, so later
/// rounds also recover from earlier kills.
@Suite struct KillTests {
    /// The `custody` executable built next to the test bundle.
    static var rounds: Int { Int(ProcessInfo.processInfo.environment["CUSTODY_KILL_ROUNDS"] ?? "") ?? 6 }

    @Test func killMinusNineLosesNoAcknowledgedAppend() async throws {
        let executable = CustodyExecutable.path
        try #require(FileManager.default.isExecutableFile(atPath: executable), "build the custody executable first: \(executable)")
        let directory = TemporaryDirectory("kill9")
        defer { directory.remove() }
        var highestAcknowledged: UInt64 = 0
        var checkedUpTo: UInt64 = 0
        var random = SplitMix64(seed: UInt64(Date().timeIntervalSince1970))
        for round in 0..<Self.rounds {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = ["log", "stress", "--data-dir", directory.path, "--appenders", "8", "--batch", "\(1 + round % 4 * 10)"]
            let output = Pipe()
            process.standardOutput = output
            process.standardError = FileHandle.nullDevice
            try process.run()
            // The pipe is drained on a thread that only waits for children, not the cooperative pool.
            let handle = output.fileHandleForReading
            async let read = ChildProcess.waiters.runIfActive { handle.readDataToEndOfFile() }
            try await Task.sleep(for: .milliseconds(300 + Int(random.next(upperBound: 900))))
            kill(process.processIdentifier, SIGKILL)
            try await ChildProcess.exit(process)
            #expect(process.terminationReason == .uncaughtSignal)
            let text = String(decoding: try await read, as: UTF8.self)
            // Only whole lines count: a line cut by the kill was never fully printed.
            var lines = text.split(separator: "\n", omittingEmptySubsequences: false)
            lines.removeLast()
            let ranges = lines.compactMap { line -> ClosedRange<UInt64>? in
                let parts = line.split(separator: " ")
                guard parts.count == 3, parts[0] == "ack", let first = UInt64(parts[1]), let last = UInt64(parts[2]) else { return nil }
                return first...last
            }
            #expect(ranges.count == lines.count, "round \(round): unreadable acknowledgement lines")
            #expect(!ranges.isEmpty, "round \(round): the child acknowledged nothing before it was killed")
            highestAcknowledged = max(highestAcknowledged, ranges.map(\.upperBound).max() ?? 0)

            // What this round added: contiguous seqs after what earlier rounds checked, and every
            // acknowledged seq there, holding what the stress command appends.
            let log = try await openLog(directory: directory.path, configuration: LogConfiguration(segmentBytes: 256 << 10))
            let records = try await readAll(log, from: checkedUpTo + 1)
            let lastSeq = await log.lastSeq
            await log.close()
            #expect(lastSeq >= highestAcknowledged, "round \(round): acknowledged seq \(highestAcknowledged), the log ends at \(lastSeq)")
            #expect(
                records.enumerated().allSatisfy { $0.element.seq == checkedUpTo + 1 + UInt64($0.offset) }
                    && lastSeq == checkedUpTo + UInt64(records.count),
                "round \(round): seqs have gaps"
            )
            for record in records {
                let text = record.payload.text
                if !(text.hasPrefix("{\"type\":\"span\"") && text.contains("} a")) {
                    Issue.record("round \(round): seq \(record.seq) holds \(text.prefix(60))")
                    break
                }
            }
            checkedUpTo = lastSeq
        }
        let verification = try LogDirectory(path: directory.path).verify()
        #expect(verification.isClean, "\(verification.damage)")
        #expect(verification.records == checkedUpTo)
        #expect(verification.segments > 1)
        // The kills fell among segment dictionaries being made and used (docs/log-format.md).
        let batches = try LogSurgery(directory: directory.path).segments().flatMap(\.batches)
        #expect(batches.contains { $0.header.codec == .lz4Dictionary })
    }
}
