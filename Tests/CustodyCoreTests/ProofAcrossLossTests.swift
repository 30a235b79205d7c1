import CustodyCore
import CustodyLog
import CustodyLogTesting
import Foundation
import Testing

/// Proofs next to a range recorded as lost (docs/api.md, "Custody proofs"). Damage in the middle
/// of the log, repaired by quarantine, takes records out from under a checkpoint whose chain runs
/// through them: a proof of an event before the gap under that checkpoint cannot be made, and
/// the answer says which seqs were lost and why, instead of a proof that fails to verify. An
/// event after the gap is still proved.
@Suite struct ProofAcrossLossTests {
    static func configuration(key: SigningKey, repair: Bool) -> CoreRuntime.Configuration {
        var configuration = CoreRuntime.Configuration()
        configuration.log.segmentBytes = 2048
        configuration.signing = .key(key)
        configuration.damagePolicy = repair ? .quarantine : .refuse
        return configuration
    }

    @Test func aProofOfAnEventBeforeAMidLogLossNamesTheLossAndOneAfterItHolds() async throws {
        let directory = TemporaryDirectory("proof-loss")
        defer { directory.remove() }
        let key = SigningKey.generate()
        let runtime = try await CoreRuntime.open(directory: directory.path, configuration: Self.configuration(key: key, repair: false))
        for i in 0..<60 {
            _ = try await runtime.logs.recordLog(
                .many([SpanInput(traceId: "t\(i)", source: "agent-factory", operation: "op")]),
                request: RequestTrace(traceId: "r\(i)")
            )
        }
        // One checkpoint, after everything: the first that covers every event.
        _ = try #require(try await runtime.proofs.checkpoints?.writeCheckpoint(force: true))
        await runtime.close()

        // Damage the third batch of the second segment (sealed) and remove its index, so that
        // opening scans it; the repair moves the batch out and records the loss.
        let surgery = LogSurgery(directory: directory.path)
        let damaged = try surgery.segments()[1]
        #expect(damaged.batches.count > 4)
        try flipBit(in: directory.file(damaged.name), at: damaged.batches[2].offset + 60)
        try FileManager.default.removeItem(atPath: directory.file(String(damaged.name.dropLast(4)) + ".index"))
        let repaired = try await CoreRuntime.open(directory: directory.path, configuration: Self.configuration(key: key, repair: true))
        let loss = try #require(repaired.log.recordedLosses.first)
        #expect(loss.firstLostSeq == damaged.batches[2].header.firstSeq && loss.firstLostSeq <= loss.lastLostSeq)

        // Before the gap, under the checkpoint after it, and in the first batch after it (whose
        // chain value before is lost with the gap): refused, naming the lost seqs.
        let afterGap = damaged.batches[3].header
        var refused = [damaged.batches[0].header.firstSeq, loss.firstLostSeq - 1, afterGap.firstSeq]
        if afterGap.lastSeq > afterGap.firstSeq { refused.append(afterGap.lastSeq) }
        for seq in refused {
            do {
                let proof = try await repaired.proofs.getProof(seq: seq)
                Issue.record("a proof of seq \(seq) across the loss was made: \(proof.seq)…\(proof.checkpoint.seq)")
            } catch {
                #expect(error.code == .notFound, "\(error)")
                #expect(
                    error.message.contains("seqs \(loss.firstLostSeq)–\(loss.lastLostSeq), which were lost")
                        || error.message.contains("seqs \(loss.firstLostSeq)–\(loss.lastLostSeq) were lost"),
                    "\(error.message)"
                )
            }
        }
        // From the second batch after the gap on: the chain is taken up again from the value the
        // batch before stores.
        let after = damaged.batches[4].header.firstSeq
        let proof = try await repaired.proofs.getProof(seq: after)
        let proved = try proof.verify(trusting: key.publicKey)
        #expect(proved.first?.seq == after)
        #expect(!proved.contains { (loss.firstLostSeq...loss.lastLostSeq).contains($0.seq) })
        await repaired.close()
    }
}
