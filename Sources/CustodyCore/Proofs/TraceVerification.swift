import NIOCore

/// What ``ProofOperations/verifyTrace(_:)`` found.
public struct TraceVerification: Sendable, Hashable {
    public struct Checkpoint: Sendable, Hashable {
        public var seq: UInt64
        public var recordSeq: UInt64?
        public var keyID: String
    }

    public var traceId: String
    public var spans: Int
    public var verified = 0
    public var unverified = 0
    public var checkpoints: [Checkpoint] = []
    /// Why spans are unverified, when they are.
    public var problem: String?

    public init(traceId: String, spans: Int) {
        self.traceId = traceId
        self.spans = spans
    }

    /// Every span checked and found under a signed checkpoint.
    public var isVerified: Bool { verified == spans && spans > 0 }

    public var jsonValue: JSONValue {
        .object([
            "trace_id": .string(traceId), "verified": .bool(isVerified), "spans": .integer(Int64(spans)),
            "verified_spans": .integer(Int64(verified)), "unverified_spans": .integer(Int64(unverified)),
            "checkpoints": .array(
                checkpoints.map {
                    .object([
                        "seq": .integer(Int64(bitPattern: $0.seq)), "checkpoint_seq": $0.recordSeq.map { .integer(Int64(bitPattern: $0)) } ?? .null,
                        "key_id": .string($0.keyID),
                    ])
                }
            ),
            "problem": problem.map(JSONValue.string) ?? .null,
        ])
    }
}

extension TraceVerification {
    /// Checks a trace's spans, at log positions `seqs`, against signed checkpoints: for the
    /// lowest seq not yet checked, `proof(seq)` must hold (``LogProof/verify(trusting:)``: the
    /// records hash, from the chain value before it, to the checkpoint's chain, and its
    /// signature holds), `keyProblem` must accept the checkpoint's key, and the record at each
    /// seq the proof covers must be a span of `traceId` that `spanProblem` accepts (nil: it is
    /// the span shown). The first problem stops the check: the spans not checked by then are
    /// unverified, and ``problem`` says why.
    ///
    /// The server calls it with its own log's proofs (``ProofOperations/verifyTrace(_:)``);
    /// `custody trace show --verify` with proofs fetched from a server and a key pinned by the
    /// caller, so that what the server says is not taken on trust.
    public static func check(
        traceId: String,
        seqs: [UInt64],
        proof: (UInt64) async throws(CoreError) -> LogProof,
        keyProblem: (LogCheckpoint) async -> String?,
        spanProblem: (UInt64, Span) -> String?
    ) async -> TraceVerification {
        var remaining = seqs.sorted()
        var verification = TraceVerification(traceId: traceId, spans: seqs.count)
        func fail(_ problem: String) -> TraceVerification {
            verification.problem = problem
            verification.unverified = verification.spans - verification.verified
            return verification
        }
        while let first = remaining.first {
            let current: LogProof
            do {
                current = try await proof(first)
            } catch {
                return fail(error.message)
            }
            let records: [LogProof.Record]
            do {
                records = try current.verify()
            } catch {
                return fail(error.description)
            }
            if let problem = await keyProblem(current.checkpoint) { return fail(problem) }
            let covered = remaining.prefix { $0 <= current.checkpoint.seq }
            let bytes = Dictionary(records.map { ($0.seq, $0.bytes) }, uniquingKeysWith: { first, _ in first })
            for seq in covered {
                guard let recordBytes = bytes[seq] else { return fail("the proof of seq \(first) does not hold seq \(seq)") }
                guard case .span(let span)? = try? EventCodec.decode(ByteBuffer(bytes: recordBytes)) else {
                    return fail("the record at seq \(seq) is not a span")
                }
                guard span.traceId == traceId else { return fail("the record at seq \(seq) is a span of trace \(span.traceId), not of \(traceId)") }
                if let problem = spanProblem(seq, span) { return fail(problem) }
                verification.verified += 1
            }
            verification.checkpoints.append(
                TraceVerification.Checkpoint(seq: current.checkpoint.seq, recordSeq: current.checkpointRecordSeq, keyID: current.checkpoint.keyID)
            )
            remaining.removeFirst(covered.count)
        }
        return verification
    }
}
