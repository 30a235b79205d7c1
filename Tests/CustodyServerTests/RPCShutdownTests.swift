import CustodyClient
import CustodyLogTesting
import CustodyRPC
import CustodyServerTesting
import Foundation
import GRPCCore
import Testing

/// `custody serve` as a real child process with a gRPC live stream open: SIGTERM ends the stream
/// and the server exits cleanly (the stream does not hold the graceful shutdown up).
@Suite(.timeLimit(.minutes(2))) struct RPCShutdownTests {
    @Test func sigtermEndsOpenStreamsAndExitsCleanly() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: CustodyExecutable.path), "build the custody executable first")
        let directory = ServerFixture.directory()
        let output = directory + "-out.txt"
        defer {
            removeDataDirectory(directory)
            try? FileManager.default.removeItem(atPath: output)
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CustodyExecutable.path)
        process.arguments = ["serve", "--data-dir", directory, "--port", "0", "--rpc-port", "0", "--otlp-grpc-port", "0", "--otlp-http-port", "0"]
        process.standardOutput = try ChildProcess.outputFile(output)
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer { if process.isRunning { process.terminate() } }
        var rpcPort = 0
        for _ in 0..<400 {
            let text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
            if let line = text.split(separator: "\n").first(where: { $0.hasPrefix("RPC (gRPC) is listening on ") }),
                let port = line.split(separator: ":").last.flatMap({ Int($0) })
            {
                rpcPort = port
                break
            }
            try await Task.sleep(for: .milliseconds(25))
        }
        try #require(rpcPort != 0)
        let connection = try CustodyRPCConnection(host: "127.0.0.1", port: rpcPort, timeout: .seconds(60))
        defer { connection.close() }
        let received = Shared(0)
        let stream = Task { () -> Bool in
            do {
                try await Custody_V1_TraceStream.Client(wrapping: connection.client).live(Custody_V1_LiveRequest()) { response in
                    for try await message in response.messages where message.trace.source == "shutdown-test" {
                        received.withLock { $0 += 1 }
                    }
                }
                return true
            } catch {
                // The server ended the stream with a status: it ended, which is what matters.
                return true
            }
        }
        let custody = CustodyClient(baseURL: "http://127.0.0.1:1", rpc: connection)
        for _ in 0..<200 where received.withLock({ $0 }) == 0 {
            _ = try await custody.recordLog(LogEntry(source: "shutdown-test", operation: "ping"))
            try await Task.sleep(for: .milliseconds(50))
        }
        try #require(received.withLock { $0 } > 0, "the stream delivered nothing")
        let stopped = ContinuousClock.now
        kill(process.processIdentifier, SIGTERM)
        while process.isRunning, ContinuousClock.now - stopped < .seconds(20) { try await Task.sleep(for: .milliseconds(20)) }
        #expect(!process.isRunning, "the server is still running 20 s after SIGTERM")
        #expect(process.terminationReason == .exit && process.terminationStatus == 0)
        #expect(await stream.value)
    }
}
