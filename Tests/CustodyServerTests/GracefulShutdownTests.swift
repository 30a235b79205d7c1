import AsyncHTTPClient
import CustodyCore
import CustodyLog
import CustodyLogTesting
import CustodyServerTesting
import Foundation
import NIOCore
import NIOHTTP1
import Synchronization
import Testing

/// `custody serve` as a real child process under load, stopped with SIGTERM: it stops taking
/// requests, finishes those in flight, and closes; every acknowledged span is in the log after,
/// exactly once, and the projections hold all of it.
@Suite(.timeLimit(.minutes(2))) struct GracefulShutdownTests {
    /// Starts `custody serve` on a free port; returns the process and its base URL.
    static func startServer(directory: String) async throws -> (Process, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CustodyExecutable.path)
        process.arguments = ["serve", "--data-dir", directory, "--port", "0", "--rpc-port", "0", "--otlp-grpc-port", "0", "--otlp-http-port", "0"]
        let output = directory + "-out.txt"
        process.standardOutput = try ChildProcess.outputFile(output)
        process.standardError = FileHandle.nullDevice
        try process.run()
        let text = try await ChildProcess.text(of: output, containing: "Dashboard:")
        try? FileManager.default.removeItem(atPath: output)
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("Custody is listening on http://") }),
            let url = line.split(separator: " ").last
        else {
            process.terminate()
            throw CocoaError(.fileReadUnknown)
        }
        return (process, String(url.dropLast(url.hasSuffix("/") ? 1 : 0)))
    }

    @Test func sigtermUnderLoadKeepsEveryAcknowledgedSpan() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: CustodyExecutable.path), "build the custody executable first")
        let directory = ServerFixture.directory()
        defer { removeDataDirectory(directory) }
        let (process, base) = try await Self.startServer(directory: directory)
        let acknowledged = Shared<[String]>([])
        let refusedAfterStop = Shared(0)
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        let load = Task {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for worker in 0..<8 {
                    group.addTask {
                        var n = 0
                        while !Task.isCancelled {
                            n += 1
                            let traces = (0..<50).map { "k-\(worker)-\(n)-\($0)" }
                            var request = HTTPClientRequest(url: base + "/api/logs")
                            request.method = .POST
                            request.headers.add(name: "content-type", value: "application/json")
                            request.body = .bytes(
                                ByteBuffer(string: "[" + traces.map { #"{"trace_id":"\#($0)","source":"load"}"# }.joined(separator: ",") + "]")
                            )
                            do {
                                let response = try await client.execute(request, timeout: .seconds(10))
                                _ = try await response.body.collect(upTo: 1 << 20)
                                if response.status == .ok {
                                    acknowledged.withLock { $0 += traces }
                                } else {
                                    refusedAfterStop.withLock { $0 += 1 }
                                }
                            } catch {
                                // The server has stopped listening.
                                refusedAfterStop.withLock { $0 += 1 }
                                try await Task.sleep(for: .milliseconds(20))
                                if !process.isRunning { return }
                            }
                        }
                    }
                }
                try await group.waitForAll()
            }
        }
        // Stop it in the middle of the load: once a good number of requests have been answered.
        while acknowledged.withLock({ $0.count }) < 2000 { try await Task.sleep(for: .milliseconds(20)) }
        kill(process.processIdentifier, SIGTERM)
        while process.isRunning { try await Task.sleep(for: .milliseconds(20)) }
        #expect(process.terminationReason == .exit && process.terminationStatus == 0)
        load.cancel()
        _ = try? await load.value
        try await client.shutdown()

        // Everything acknowledged is in the log, once; the projections hold all of it.
        let log = try await SegmentLog.open(directory: directory)
        var seen: [String: Int] = [:]
        var next: UInt64 = 1
        while true {
            let records = try await log.read(from: next, maxRecords: 10_000)
            guard let last = records.last else { break }
            for record in records {
                if case .span(let span) = try EventCodec.decode(record).body, span.source == "load" { seen[span.traceId, default: 0] += 1 }
            }
            next = last.seq + 1
        }
        let acked = acknowledged.withLock { $0 }
        let missing = acked.filter { seen[$0] == nil }
        #expect(missing.isEmpty, "\(missing.count) acknowledged spans are missing")
        #expect(seen.values.allSatisfy { $0 == 1 })
        let head = await log.lastSeq
        await log.close()
        let store = try SQLiteProjectionStore(path: ProjectionPaths.database(in: directory))
        #expect(try await store.appliedSeq() == head)
        try store.closeDatabase()
    }
}
