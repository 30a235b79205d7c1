import CustodyLog
import CustodyLogTesting
import CustodyServerTesting
import Foundation
import NIOCore
import Testing

/// `custody log verify|inspect|dump`, run as a user would: the real executable on a real log.
@Suite struct CommandTests {
    struct Run {
        var status: Int32
        var output: String
        var errors: String
    }

    static func custody(_ arguments: [String]) async throws -> Run {
        let (status, output, errors) = try await CustodyCommand.run(arguments)
        return Run(status: status, output: output, errors: errors)
    }

    static func makeLog(_ directory: String) async throws {
        let log = try await openLog(directory: directory, configuration: LogConfiguration(segmentBytes: 2048))
        for i in 1...40 {
            let type = i % 2 == 0 ? "span" : "task.created"
            _ = try await log.append(
                ByteBuffer(string: #"{"type":"\#(type)","trace_id":"t\#(i % 3)","n":\#(i),"pad":"\#(String(repeating: "p", count: 60))"}"#)
            )
        }
        _ = try await log.append(ByteBuffer(bytes: [0xFF, 0x00, 0x01]))  // not JSON
        await log.close()
    }

    @Test func verifyInspectAndDumpACleanLog() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: CustodyExecutable.path))
        let directory = TemporaryDirectory("cli")
        defer { directory.remove() }
        try await Self.makeLog(directory.path)

        let verify = try await Self.custody(["log", "verify", "--data-dir", directory.path])
        #expect(verify.status == 0)
        #expect(verify.output.contains("41 records") && verify.output.contains("clean"))

        let inspect = try await Self.custody(["log", "inspect", "--data-dir", directory.path, "--json"])
        #expect(inspect.status == 0)
        let inspection = try JSONSerialization.jsonObject(with: Data(inspect.output.utf8)) as! [String: Any]
        let segments = inspection["segments"] as! [[String: Any]]
        #expect(segments.count == (try directory.segments()).count)
        #expect(segments.reduce(0) { $0 + ($1["records"] as! Int) } == 41)

        let dump = try await Self.custody(["log", "dump", "--data-dir", directory.path, "--from", "10", "--to", "14"])
        #expect(dump.status == 0)
        let lines = dump.output.split(separator: "\n").map { try! JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        #expect(lines.map { $0["seq"] as! Int } == [10, 11, 12, 13, 14])
        #expect((lines[0]["record"] as! [String: Any])["n"] as? Int == 10)

        // Records that are not events cannot match an event filter.
        let filtered = try await Self.custody(["log", "dump", "--data-dir", directory.path, "--type", "span"])
        #expect(filtered.status == 0 && filtered.output.isEmpty)
        let badType = try await Self.custody(["log", "dump", "--data-dir", directory.path, "--type", "nonsense"])
        #expect(badType.status != 0 && badType.errors.contains("--type takes one of"))

        let binary = try await Self.custody(["log", "dump", "--data-dir", directory.path, "--from", "41"])
        #expect(binary.output.contains(#""base64":"/wAB""#))

        let missing = try await Self.custody(["log", "verify", "--data-dir", directory.path + "/nope"])
        #expect(missing.status != 0)
        #expect(missing.errors.hasPrefix("custody: there is no data directory"))
        #expect(!missing.errors.contains("Fatal error"))
    }

    @Test func verifyNamesDamageAndRepairQuarantinesIt() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: CustodyExecutable.path))
        let directory = TemporaryDirectory("cli-damage")
        defer { directory.remove() }
        try await Self.makeLog(directory.path)
        let segment = try directory.segments()[1]
        try flipBit(in: directory.file(segment), at: 100)

        let verify = try await Self.custody(["log", "verify", "--data-dir", directory.path])
        #expect(verify.status == 1)
        #expect(verify.output.contains("DAMAGE: \(segment) at byte 0"))
        #expect(verify.output.contains("CRC-32C mismatch"))

        let repair = try await Self.custody(["log", "verify", "--repair", "--data-dir", directory.path])
        #expect(repair.status == 0, "\(repair.output) \(repair.errors)")
        #expect(repair.errors.contains("quarantined \(segment)"))
        #expect(repair.output.contains("clean"))
        #expect(try await Self.custody(["log", "verify", "--data-dir", directory.path]).status == 0)
    }
}
