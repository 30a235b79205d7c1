import CustodyCore
import Hummingbird

/// Custody proofs over HTTP (docs/api.md, "Custody proofs"): decode → ``ProofOperations`` →
/// encode. Not traced: reading proofs appends nothing to the log it proves.
struct ProofRoutes {
    let runtime: CoreRuntime

    func register(on router: Router<CustodyRequestContext>) {
        let proofs = runtime.proofs
        router.get("/api/log/checkpoint") { _, _ in
            APIEnvelope.ok(try await proofs.getCheckpoint().jsonValue)
        }
        router.get("/api/log/checkpoints") { request, _ in
            let fromSeq = try QueryValues.integer(request.query("from_seq"), "from_seq") ?? 0
            guard fromSeq >= 0 else { throw CoreError.invalidArgument("from_seq", "must not be negative") }
            let checkpoints = try await proofs.listCheckpoints(
                fromSeq: UInt64(fromSeq),
                limit: try QueryValues.integer(request.query("limit"), "limit") ?? 100
            )
            return APIEnvelope.ok(.object(["checkpoints": .array(checkpoints.map(\.jsonValue))]))
        }
        router.get("/api/log/proof") { request, _ in
            guard let seq = try QueryValues.integer(request.query("seq"), "seq") else {
                throw CoreError.invalidArgument("seq", "is required")
            }
            guard seq > 0 else { throw CoreError.invalidArgument("seq", "must be positive") }
            return APIEnvelope.ok(try await proofs.getProof(seq: UInt64(seq)).jsonValue)
        }
        router.get("/api/traces/{trace_id}/verification") { _, context in
            APIEnvelope.ok(try await proofs.verifyTrace(try context.pathValue("trace_id")).jsonValue)
        }
        router.post("/api/admin/signing-key/rotate") { _, _ in
            APIEnvelope.ok(try await proofs.rotateSigningKey().jsonValue)
        }
    }
}
