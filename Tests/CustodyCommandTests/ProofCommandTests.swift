import CustodyClient
import CustodyCore
import CustodyLogTesting
import CustodyServerTesting
import Foundation
import Testing

/// Custody proofs end to end, as a person uses them: a real `custody serve`, writes whose
/// receipts the client SDK returns, `custody log checkpoint --save`, `custody trace show
/// --verify` (checked in the command, not by the server) pinned to the saved key and across a
/// key rotation, and `custody log verify --receipt --checkpoint` on the stopped server's
/// directory.
@Suite(.timeLimit(.minutes(3))) struct ProofCommandTests {
    @Test func receiptsCheckpointsAndTraceVerificationThroughTheCommands() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: CustodyExecutable.path), "build the custody executable first")
        let directory = ServerFixture.directory()
        defer { removeDataDirectory(directory) }
        let (server, base) = try await CustodyCommand.serve(directory, ["--checkpoint-interval", "0.2"])
        defer { server.removeFiles() }
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("custody-proofs-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { removeDataDirectory(folder) }
        do {
            let client = CustodyClient(baseURL: base)
            let written = try await client.recordLog([
                LogEntry(traceId: "proved", spanId: "p1", source: "agent-factory", operation: "agent.plan", durationMs: 12),
                LogEntry(traceId: "proved", spanId: "p2", parentSpanId: "p1", source: "data-factory", operation: "data.load", durationMs: 5),
            ])
            // The SDK returns the write's receipt: the seq of its last event (the request's own span
            // comes after the entries) and the chain value after it.
            let receipt = try #require(written.receipt, "the write carried no receipt")
            #expect(receipt.seq >= written.lastSeq && receipt.chain.count == 64)
            try await Self.waitForCheckpoint(covering: receipt.seq, on: client)

            let saved = folder + "/checkpoint.json"
            let save = try await CustodyCommand.run(["log", "checkpoint", "--server", base, "--save", saved])
            #expect(save.status == 0 && save.output.contains("saved the checkpoint of seq"), "\(save.output) \(save.error)")

            // Verified here, against the key of the saved checkpoint.
            let shown = try await CustodyCommand.run(["trace", "show", "proved", "--server", base, "--verify", "--checkpoint", saved])
            #expect(shown.status == 0, "\(shown.output) \(shown.error)")
            #expect(shown.output.contains("✓ verified · 2 spans under 1 signed checkpoint") && shown.output.contains(", pinned"), "\(shown.output)")
            // Pinned to a key the server never had: not verified, exit 1.
            let otherKey = Hex.encode(SigningKey.generate().publicKey)
            let wrongKey = try await CustodyCommand.run(["trace", "show", "proved", "--server", base, "--verify", "--public-key", otherKey])
            #expect(
                wrongKey.status == 1 && wrongKey.output.contains("✗ not verified") && wrongKey.output.contains("not the pinned key"),
                "\(wrongKey.output)"
            )
            // Unpinned: verified, and said to be unpinned.
            let unpinned = try await CustodyCommand.run(["trace", "show", "proved", "--server", base, "--verify"])
            #expect(unpinned.status == 0 && unpinned.output.contains("not pinned"), "\(unpinned.output)")

            // A rotation: spans under checkpoints of the new key verify with the old key pinned.
            let rotated = try await CustodyCommand.run(["log", "rotate-key", "--server", base])
            #expect(rotated.status == 0, "\(rotated.output) \(rotated.error)")
            let later = try await client.recordLog([LogEntry(traceId: "after-rotation", spanId: "r1", source: "ops-factory", operation: "ops.page")])
            let laterReceipt = try #require(later.receipt)
            let newest = try await Self.waitForCheckpoint(covering: laterReceipt.seq, on: client)
            let savedKey = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: saved))) as? [String: Any])
            #expect(newest.keyId != savedKey["key_id"] as? String, "the rotation did not change the key")
            let acrossRotation = try await CustodyCommand.run([
                "trace", "show", "after-rotation", "--server", base, "--verify", "--checkpoint", saved,
            ])
            #expect(acrossRotation.status == 0 && acrossRotation.output.contains("✓ verified · 1 span under"), "\(acrossRotation.output)")
            #expect(acrossRotation.output.contains(newest.keyId), "\(acrossRotation.output)")

            // An unknown trace: the command's own error, not a verification.
            let missing = try await CustodyCommand.run(["trace", "show", "no-such-trace", "--server", base, "--verify"])
            #expect(missing.status == 1 && missing.error.contains("no-such-trace"), "\(missing.error)")

            try await server.stop()
            // The stopped server's directory holds the receipt and the saved checkpoint.
            let verified = try await CustodyCommand.run([
                "log", "verify", "--data-dir", directory, "--receipt", receipt.description, "--checkpoint", saved,
            ])
            #expect(verified.status == 0 && verified.output.contains("clean"), "\(verified.output) \(verified.error)")
            #expect(verified.output.contains("holds: receipt"), "\(verified.output)")
            // A receipt the log never gave fails.
            let forged = WriteReceipt(seq: receipt.seq, chain: String(repeating: "0", count: 64))
            let refused = try await CustodyCommand.run(["log", "verify", "--data-dir", directory, "--receipt", forged.description])
            #expect(refused.status == 1 && refused.output.contains("FAILS: receipt"), "\(refused.output) \(refused.error)")
        } catch {
            try? await server.stop()
            throw error
        }
    }

    /// Waits until the server's newest checkpoint covers `seq`; returns it.
    @discardableResult
    static func waitForCheckpoint(covering seq: UInt64, on client: CustodyClient) async throws -> SignedCheckpoint {
        let deadline = ContinuousClock.now + .seconds(20)
        while true {
            if let checkpoint = try? await client.getCheckpoint(), checkpoint.seq >= seq { return checkpoint }
            guard ContinuousClock.now < deadline else { throw CancellationError() }
            try await Task.sleep(for: .milliseconds(50))
        }
    }
}
