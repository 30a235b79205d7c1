import CustodyLog
import CustodyLogTesting
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
