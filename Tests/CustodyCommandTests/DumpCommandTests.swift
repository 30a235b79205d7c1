import CustodyCore
import CustodyLog
import CustodyLogTesting
import CustodyServerTesting
import Foundation
import NIOCore
import Testing

/// `custody log dump` on a log of events: decoded, filtered by type and trace.
@Suite struct DumpCommandTests {
    @Test func dumpPrintsDecodedEventsAndFilters() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: CustodyExecutable.path))
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("custody-dump-\(UUID().uuidString)").path
        defer { removeDataDirectory(directory) }
        let log = try await SegmentLog.open(directory: directory)
        var bodies: [EventBody] = []
        for i in 0..<12 {
            bodies.append(.span(Span(traceId: "trace-\(i % 3)", source: "agent-factory", operation: "op\(i)", timestamp: Int64(i) * 1_000_000_000)))
            bodies.append(.taskStatusChanged(TaskStatusChanged(uuid: "task-\(i)", status: .complete, previousStatus: .inProgress)))
        }
        _ = try await log.append(bodies.map(EventCodec.encode))
        await log.close()

        let (status, text, _) = try await CustodyCommand.run(["log", "dump", "--data-dir", directory, "--type", "span", "--trace", "trace-1"])
        #expect(status == 0)
        let lines = try text.split(separator: "\n").map { try JSONDecoder().decode(JSONValue.self, from: Data($0.utf8)) }
        #expect(lines.count == 4)
        #expect(lines.map { $0.objectValue?["seq"] } == [3, 9, 15, 21].map { JSONValue.integer($0) })
        let body = lines.first?.objectValue?["body"]?.objectValue
        #expect(lines.first?.objectValue?["type"] == .string("span"))
        #expect(body?["trace_id"] == .string("trace-1") && body?["operation"] == .string("op1"))
        #expect(body?["timestamp"] == .string("1970-01-01T00:00:01.000Z"))
    }
}
