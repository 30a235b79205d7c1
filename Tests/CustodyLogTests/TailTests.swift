import CustodyLog
import CustodyLogTesting
import Foundation
import NIOCore
import Testing

@Suite struct TailTests {
    /// Concurrent writers and tailing readers: every reader sees every record once, in order.
    @Test func tailingReadersFollowConcurrentWriters() async throws {
        let directory = TemporaryDirectory("tail")
        defer { directory.remove() }
        let log = try await openLog(directory: directory.path, configuration: LogConfiguration(segmentBytes: 16 << 10))
        let writers = 4
        let perWriter = 300
        let total = writers * perWriter * 2
        try await withThrowingTaskGroup(of: Void.self) { group in
            for reader in 0..<3 {
                group.addTask {
                    var next: UInt64 = 1
                    for try await batch in log.records(from: 1) {
                        for record in batch {
                            #expect(record.seq == next, "reader \(reader)")
                            next += 1
                        }
                        if next > UInt64(total) { break }
                    }
                    #expect(next == UInt64(total) + 1)
                }
            }
            for writer in 0..<writers {
                group.addTask {
                    for i in 0..<perWriter {
                        _ = try await log.append(payloads(["w\(writer)-\(i)a", "w\(writer)-\(i)b"]))
                        if i % 50 == 0 { try await Task.sleep(for: .milliseconds(1)) }
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(await log.status().segments.count > 1)
        await log.close()
    }

    @Test func waitingForAppendsEndsOnCancellationAndOnClose() async throws {
        let directory = TemporaryDirectory("wait")
        defer { directory.remove() }
        let log = try await openLog(directory: directory.path)
        let waiter = Task { try await log.waitForAppend(after: 0) }
        waiter.cancel()
        await #expect(throws: CancellationError.self) { try await waiter.value }

        let woken = Task { try await log.waitForAppend(after: 0) }
        _ = try await log.append(ByteBuffer(string: "x"))
        #expect(try await woken.value == 1)

        let tail = Task {
            var count = 0
            for try await batch in log.records(from: 1) { count += batch.count }
            return count
        }
        await log.close()
        #expect(try await tail.value == 1)
    }
}
