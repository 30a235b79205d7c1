import CustodyCore
import CustodyLog
import CustodyLogTesting
import Foundation
import NIOCore
import Testing

@Suite struct LogOperationsTests {
    static func withLog(fileSystem: any LogFileSystem = PosixFileSystem(), _ body: (SegmentLog) async throws -> Void) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("custody-logops-\(UUID().uuidString)").path
        defer { removeDataDirectory(directory) }
        let log = try await SegmentLog.open(directory: directory, fileSystem: fileSystem)
        try await body(log)
        await log.close()
    }

    static func events(_ log: SegmentLog) async throws -> [Event] {
        try await log.read(from: 1, maxRecords: 100_000).map { record throws(EventCodecError) in try EventCodec.decode(record) }
    }

    @Test func recordsEntriesAndOneProcessingSpan() async throws {
        try await Self.withLog { log in
            let operations = LogOperations(log: log, now: { 1_793_739_600_000_000_000 }, newTraceId: { "new-trace" })
            let recorded = try await operations.recordLog(
                .many([SpanInput(traceId: "t-1", source: "agent-factory"), SpanInput(operation: "createAgent", durationMs: 3)]),
                request: RequestTrace(traceId: "request-trace")
            )
            #expect(recorded.traceIds == ["t-1", "new-trace"])
            #expect(recorded.firstSeq == 1 && recorded.lastSeq == 2 && recorded.accepted == 2)
            let events = try await Self.events(log)
            #expect(events.count == 3)
            guard case .span(let first) = events[0].body, case .span(let second) = events[1].body, case .span(let processing) = events[2].body else {
                Issue.record("not spans: \(events)")
                return
            }
            #expect(first.traceId == "t-1" && first.source == "agent-factory" && first.stage == "processing")
            #expect(second.operation == "createAgent" && second.durationMs == 3 && second.timestamp == 1_793_739_600_000_000_000)
            #expect(processing.traceId == "request-trace" && processing.source == "orchestrator" && processing.operation == "recordLog")
            #expect(processing.details?.jsonValue == .object(["accepted": .integer(2)]))
            // All three were one append: one timestamp.
            #expect(Set(events.map(\.ingestedAt)).count == 1)
        }
    }

    @Test func aBadEntryRejectsTheCallNamesItAndAppendsNothing() async throws {
        try await Self.withLog { log in
            let operations = LogOperations(log: log)
            _ = try await operations.recordLog(.one(SpanInput(traceId: "ok")), request: RequestTrace(traceId: "r"))
            let before = await log.lastSeq
            do {
                _ = try await operations.recordLog(
                    .many([SpanInput(), SpanInput(), SpanInput(durationMs: -1)]),
                    request: RequestTrace(traceId: "r")
                )
                Issue.record("a bad entry was accepted")
            } catch let error as CoreError {
                #expect(error.code == .invalidArgument)
                #expect(error.field == "entries[2].duration_ms")
                #expect(error.message.hasPrefix("entries[2].duration_ms must be"))
            }
            do {
                _ = try await operations.recordLog(.one(SpanInput(source: "")), request: RequestTrace(traceId: "r"))
                Issue.record("a bad entry was accepted")
            } catch let error as CoreError {
                #expect(error.field == "source")
            }
            do {
                _ = try await operations.recordLog(.many([]), request: RequestTrace(traceId: "r"))
                Issue.record("an empty list was accepted")
            } catch let error as CoreError {
                #expect(error.field == "entries")
            }
            do {
                _ = try await operations.recordLog(
                    .many(Array(repeating: SpanInput(), count: LogOperations.maximumEntries + 1)),
                    request: RequestTrace(traceId: "r")
                )
                Issue.record("too many entries were accepted")
            } catch let error as CoreError {
                #expect(error.code == .invalidArgument && error.field == "entries")
            }
            #expect(await log.lastSeq == before)
        }
    }

    @Test func aLogThatCannotBeWrittenIsStorageUnavailable() async throws {
        let fileSystem = FaultInjectingFileSystem()
        try await Self.withLog(fileSystem: fileSystem) { log in
            let operations = LogOperations(log: log)
            fileSystem.failNextSynchronize()
            do {
                _ = try await operations.recordLog(.one(SpanInput()), request: RequestTrace(traceId: "r"))
                Issue.record("an append whose fsync failed was acknowledged")
            } catch let error as CoreError {
                #expect(error.code == .storageUnavailable)
            }
            #expect(await log.lastSeq == 0)
            // The log recovers by itself on the next call.
            #expect(try await operations.recordLog(.one(SpanInput()), request: RequestTrace(traceId: "r")).firstSeq == 1)
        }
    }
}
