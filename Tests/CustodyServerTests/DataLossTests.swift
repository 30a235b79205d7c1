import CustodyClient
import CustodyCore
import CustodyLog
import CustodyLogTesting
import CustodyServerTesting
import Foundation
import Testing

/// R12 as an operator meets it, with real `custody serve` processes: a log cut into durable data
/// (the newest segment shortened after a clean stop) is not a torn tail. A plain start refuses
/// with one sentence naming the segment and the missing seqs; `--repair` records the loss (in
/// `quarantine.json` and as a `log.loss` event), rebuilds the projections before serving — the
/// API shows nothing the log no longer holds — and numbers new events after every seq ever
/// acknowledged. `log verify` is clean after, and says what was lost.
@Suite(.timeLimit(.minutes(3))) struct DataLossTests {
    @Test func aCutIntoDurableDataRefusesThenRepairRecordsItAndNoSeqIsReused() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: CustodyExecutable.path), "build the custody executable first")
        let directory = ServerFixture.directory()
        defer { removeDataDirectory(directory) }

        // 20 spans, one request each, then a clean stop.
        let (server, base) = try await CustodyCommand.serve(directory)
        var receipts: [(trace: String, seqs: ClosedRange<UInt64>)] = []
        do {
            let client = CustodyClient(baseURL: base)
            for i in 0..<20 {
                let trace = "loss-\(i)"
                let receipt = try await client.recordLog([LogEntry(traceId: trace, source: "agent-factory", operation: "op-\(i)")])
                receipts.append((trace, receipt.firstSeq...receipt.lastSeq))
            }
            try await server.stop()
            server.removeFiles()
        } catch {
            try? await server.stop()
            throw error
        }
        // The last seq of the log as the clean stop left it (the requests' own spans follow the
        // receipts' ranges).
        let dumped = try await CustodyCommand.run(["log", "dump", "--data-dir", directory])
        let lastLine = try #require(dumped.output.split(separator: "\n").last)
        let lastEvent = try #require(try JSONSerialization.jsonObject(with: Data(lastLine.utf8)) as? [String: Any])
        let highest = try #require((lastEvent["seq"] as? Int).map(UInt64.init))
        #expect(highest >= receipts.last!.seqs.upperBound)

        // Cut the newest segment in half.
        let segment = try #require(
            try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".log") }.sorted().last
        )
        let path = directory + "/" + segment
        let size = try #require(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.truncate(atOffset: UInt64(size / 2))
        try handle.close()

        // A plain start refuses, naming the segment and the seqs, and changes nothing.
        let refused = try await CustodyCommand.run([
            "serve", "--data-dir", directory, "--port", "0", "--rpc-port", "0", "--otlp-grpc-port", "0", "--otlp-http-port", "0",
        ])
        #expect(refused.status != 0)
        let sentence = refused.error.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(sentence.contains(segment) && sentence.contains("–\(highest)") && sentence.contains("--repair"), "\(sentence)")
        #expect(sentence.split(separator: "\n").count == 1, "not one sentence: \(sentence)")
        #expect(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int == size / 2)
        let verify = try await CustodyCommand.run(["log", "verify", "--data-dir", directory])
        #expect(verify.status != 0 && verify.output.contains("acknowledged records are missing"), "\(verify.output)")

        // --repair: serves, with the loss recorded and the projections rebuilt.
        let (repaired, repairedBase) = try await CustodyCommand.serve(directory, ["--repair"])
        do {
            let client = CustodyClient(baseURL: repairedBase)
            let stats = try await client.adminStats()
            let losses = try #require(stats["log"]?["losses"])
            guard case .array(let list) = losses, let loss = list.first else {
                Issue.record("no loss in /api/admin/stats: \(losses)")
                try await repaired.stop()
                return
            }
            let firstLost = try #require(loss["first_seq"]?.numberValue.map { UInt64($0) })
            #expect(loss["last_seq"]?.numberValue == Double(highest))
            // Every trace whose spans were cut is gone from the API; every other one is whole.
            for (trace, seqs) in receipts {
                if seqs.lowerBound >= firstLost {
                    await #expect(throws: CustodyClientError.self, "\(trace) outlived its events") { try await client.getTrace(trace) }
                } else {
                    #expect(try await client.getTrace(trace).spans.count == 1, "\(trace)")
                }
            }
            let searched = try await client.searchTraces(source: "agent-factory", limit: 100)
            #expect(Set(searched.traces.map(\.traceId)) == Set(receipts.filter { $0.seqs.lowerBound < firstLost }.map(\.trace)))
            // A new write gets a seq after every one ever acknowledged, and is readable.
            let next = try await client.recordLog([LogEntry(traceId: "after-repair", source: "agent-factory", operation: "next")])
            #expect(next.firstSeq > highest)
            #expect(try await client.getTrace("after-repair").spans.first?.seq == next.firstSeq)
            try await repaired.stop()
            repaired.removeFiles()
        } catch {
            try? await repaired.stop()
            throw error
        }

        // Offline: verify is clean and names the recorded loss; the log holds one log.loss event.
        let clean = try await CustodyCommand.run(["log", "verify", "--data-dir", directory])
        #expect(clean.status == 0, "\(clean.output)")
        #expect(clean.output.contains("recorded loss: seqs"), "\(clean.output)")
        let dump = try await CustodyCommand.run(["log", "dump", "--data-dir", directory, "--type", "log.loss"])
        #expect(dump.output.split(separator: "\n").count == 1 && dump.output.contains("\"last_seq\":\(highest)"), "\(dump.output)")
        // And a plain start now starts.
        let (again, _) = try await CustodyCommand.serve(directory)
        try await again.stop()
        again.removeFiles()
    }
}
