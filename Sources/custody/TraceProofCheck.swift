import CustodyClient
import CustodyCore
import Foundation
import NIOCore

/// `custody trace show --verify`: a trace fetched from a server, checked here against the
/// server's proofs with ``TraceVerification/check(traceId:seqs:proof:keyProblem:spanProblem:)``,
/// so that the answer does not rest on the server's word: the chain is recomputed over the
/// proved records, the signatures are checked, and each span shown must be the span its record
/// holds.
struct TraceProofCheck {
    let client: CustodyClient
    /// The keys the caller trusts (and those they rotated to); empty: the first checkpoint's key
    /// is taken on trust, and the summary says so.
    let pinned: Set<[UInt8]>

    struct Outcome {
        var verification: TraceVerification
        /// The keys that signed the checkpoints used, and whether the caller pinned them.
        var keyNote: String

        var summary: String {
            let v = verification
            if v.isVerified {
                let seqs = v.checkpoints.map { "seq \($0.seq)" }.joined(separator: ", ")
                let count = v.checkpoints.count
                return
                    "✓ verified · \(v.verified) span\(v.verified == 1 ? "" : "s") under \(count) signed checkpoint\(count == 1 ? "" : "s") (\(seqs)); \(keyNote)"
            }
            return "✗ not verified: \(v.verified) of \(v.spans) spans checked; \(v.problem ?? "the trace has no spans")"
        }
    }

    func verify(_ document: TraceDocument) async -> Outcome {
        let shown = Dictionary(document.spans.map { ($0.seq, $0) }, uniquingKeysWith: { first, _ in first })
        let keys = KeyState(pinned: pinned)
        let client = client
        let verification = await TraceVerification.check(
            traceId: document.traceId,
            seqs: document.spans.map(\.seq),
            proof: { seq throws(CoreError) in
                let answer: EventProof
                do throws(CustodyClientError) {
                    answer = try await client.getProof(seq: seq)
                } catch {
                    throw CoreError(.notFound, "the proof of seq \(seq) could not be fetched: \(error.message)")
                }
                return try LogProof(answer)
            },
            keyProblem: { checkpoint in await keys.problem(with: checkpoint, client: client) },
            spanProblem: { seq, recorded in shown[seq].flatMap { Self.difference(shown: $0, recorded: recorded) } }
        )
        return Outcome(verification: verification, keyNote: await keys.note)
    }

    /// Where the span the server showed differs from the one its record holds, or nil.
    static func difference(shown: ShownSpan, recorded: Span) -> String? {
        var fields: [String] = []
        if shown.spanId != recorded.spanId { fields.append("span_id") }
        if shown.parentSpanId != recorded.parentSpanId { fields.append("parent_span_id") }
        if shown.source != recorded.source { fields.append("source") }
        if shown.stage != recorded.stage { fields.append("stage") }
        if shown.operation != recorded.operation { fields.append("operation") }
        if shown.taskUuid != recorded.taskUUID { fields.append("task_uuid") }
        if shown.durationMs != recorded.durationMs { fields.append("duration_ms") }
        // The API shows timestamps to the millisecond: compared as it would show the record's.
        if shown.timestamp != RFC3339.format(recorded.timestamp) { fields.append("timestamp") }
        let recordedDetails = recorded.details.flatMap { try? JSONDecoder().decode(JSON.self, from: Data($0.bytes.readableBytesView)) }
        if shown.details != recordedDetails { fields.append("details") }
        guard !fields.isEmpty else { return nil }
        return "the span shown at seq \(shown.seq) differs from its record in the log: \(fields.joined(separator: ", "))"
    }

    /// The keys trusted so far, and which signed what.
    actor KeyState {
        var trusted: Set<[UInt8]>
        let pinned: Bool
        var used: Set<String> = []
        var rotationsRead = false

        init(pinned: Set<[UInt8]>) {
            self.trusted = pinned
            self.pinned = !pinned.isEmpty
        }

        func problem(with checkpoint: LogCheckpoint, client: CustodyClient) async -> String? {
            if !pinned && trusted.isEmpty { trusted.insert(checkpoint.publicKey) }
            if !trusted.contains(checkpoint.publicKey) && !rotationsRead {
                // The server rotated since the key was pinned: follow its announcements.
                rotationsRead = true
                var rotations: [LogCheckpoint] = []
                var from: UInt64 = 0
                while let page = try? await client.listCheckpoints(fromSeq: from, limit: 1000), !page.isEmpty {
                    rotations += page.compactMap { try? LogCheckpoint(signed: $0) }.filter { $0.nextPublicKey != nil }
                    guard let last = page.last, page.count == 1000 else { break }
                    from = last.seq + 1
                }
                trusted = KeyRotations(rotations).keys(announcedBy: trusted)
            }
            guard trusted.contains(checkpoint.publicKey) else {
                return pinned
                    ? "the checkpoint at seq \(checkpoint.seq) is signed by key \(checkpoint.keyID), which is not the pinned key nor one it rotated to"
                    : "the checkpoint at seq \(checkpoint.seq) is signed by key \(checkpoint.keyID), not by the key the trace's first checkpoint was signed with nor one it rotated to"
            }
            used.insert(checkpoint.keyID)
            return nil
        }

        var note: String {
            let ids = used.sorted().joined(separator: ", ")
            return pinned
                ? "signed by key \(ids), pinned"
                : "signed by key \(ids), not pinned (pass --public-key or --checkpoint to check it is the key you trust)"
        }
    }
}

extension LogProof {
    /// A proof as the client decoded it, checked as ``init(json:)`` checks it.
    init(_ proof: EventProof) throws(CoreError) {
        guard let data = try? encodeJSON(proof), let json = try? JSONDecoder().decode(JSONValue.self, from: Data(data.utf8)) else {
            throw CoreError.invalidArgument("proof", "the server's proof of seq \(proof.seq) could not be read")
        }
        try self.init(json: json)
    }
}

extension LogCheckpoint {
    /// A checkpoint as the client decoded it, checked as ``init(json:)`` checks it.
    init(signed: SignedCheckpoint) throws {
        let data = try Data(encodeJSON(signed).utf8)
        try self.init(json: JSONDecoder().decode(JSONValue.self, from: data))
    }
}
