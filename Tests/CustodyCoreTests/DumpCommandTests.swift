import CustodyCore
import CustodyLog
import Foundation
import NIOCore
import Testing

/// `custody log dump` on a log of events: decoded, filtered by type and trace.
@Suite struct DumpCommandTests {
    static var custodyExecutable: String {
        let bundle = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        return bundle.deletingLastPathComponent().appendingPathComponent("custody").path
    }

    @Test func dumpPrintsDecodedEventsAndFilters() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.custodyExecutable))
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("custody-dump-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let log = try await SegmentLog.open(directory: directory)
        var bodies: [EventBody] = []
        for i in 0..<12 {
            bodies.append(.span(Span(traceId: "trace-\(i % 3)", source: "agent-factory", operation: "op\(i)", timestamp: Int64(i) * 1_000_000_000)))
            bodies.append(.taskStatusChanged(TaskStatusChanged(uuid: "task-\(i)", status: .complete, previousStatus: .inProgress)))
        }
        _ = try await log.append(bodies.map(EventCodec.encode))
        await log.close()

        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.custodyExecutable)
        process.arguments = ["log", "dump", "--data-dir", directory, "--type", "span", "--trace", "trace-1"]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        let lines = try text.split(separator: "\n").map { try JSONDecoder().decode(JSONValue.self, from: Data($0.utf8)) }
        #expect(lines.count == 4)
        #expect(lines.map { $0.objectValue?["seq"] } == [3, 9, 15, 21].map { JSONValue.integer($0) })
        let body = lines.first?.objectValue?["body"]?.objectValue
        #expect(lines.first?.objectValue?["type"] == .string("span"))
        #expect(body?["trace_id"] == .string("trace-1") && body?["operation"] == .string("op1"))
        #expect(body?["timestamp"] == .string("1970-01-01T00:00:01.000Z"))
    }
}
