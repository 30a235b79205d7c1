import CustodyLog
import CustodyLogTesting
import Testing

@testable import CustodyCore

@Suite struct ProjectorLagTests {
    /// `lag()` asked again and again while events are appended and applied: the projector may apply
    /// a batch past the head `lag()` read while it waits for the log (the actor is reentrant), and
    /// that must not make it subtract past zero — it did, and the arithmetic trap stopped the
    /// server under load, when the stats were polled.
    @Test func lagAskedWhileEventsAreAppliedStaysWithinTheLog() async throws {
        let directory = ProjectionTests.temporaryDirectory()
        defer { removeDataDirectory(directory) }
        var configuration = LogConfiguration()
        configuration.fsync = .never
        let log = try await openLog(directory: directory + "/log", configuration: configuration)
        let store = try SQLiteProjectionStore(path: directory + "/projections.sqlite")
        let projector = Projector(log: log, store: store, batchSize: 3)
        let running = Task { try await projector.run() }
        let count: UInt64 = 20_000
        let appending = Task {
            for index in 0..<count {
                let span = Span(traceId: "trace-\(index % 50)", spanId: "\(index)", timestamp: LogTime.now())
                _ = try await log.append([EventCodec.encode(.span(span))])
            }
        }
        var asked = 0
        while await log.lastSeq < count {
            let lag = await projector.lag()
            #expect(lag.events <= (await log.lastSeq))
            asked += 1
        }
        try await appending.value
        #expect(asked > 100)
        try await projector.waitUntilApplied(await log.lastSeq, timeout: .seconds(30))
        #expect(await projector.lag().events == 0)
        running.cancel()
        _ = try? await running.value
        try store.closeDatabase()
        await log.close()
    }
}
