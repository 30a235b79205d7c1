import CustodyLog
import NIOCore

/// Custody proofs (docs/api.md, "Custody proofs"): the signed checkpoints, offline proofs of an
/// event, a trace checked against them, and key rotation. The HTTP routes and `custody` call
/// these; none holds logic of its own.
public struct ProofOperations: Sendable {
    /// A proof carries at most this many records: beyond, the seq is too far before the
    /// checkpoint that covers it (a log written before checkpoints were kept every
    /// ``CheckpointSettings/eventInterval`` events).
    public static let maximumProofRecords = 250_000

    let context: CoreContext
    let traces: TraceQueries
    /// Nil when the server writes no checkpoints (the chain is off).
    public let checkpoints: CheckpointWriter?

    init(context: CoreContext, traces: TraceQueries, checkpoints: CheckpointWriter?) {
        self.context = context
        self.traces = traces
        self.checkpoints = checkpoints
    }

    /// The newest signed checkpoint (the writer's, which may not be projected yet, or the
    /// projections' newest).
    public func getCheckpoint() async throws(CoreError) -> StoredLogCheckpoint {
        var newest = await checkpoints?.newest
        do {
            if let stored = try await context.store.latestLogCheckpoint(), stored.recordSeq > newest?.recordSeq ?? 0 { newest = stored }
        } catch {
            throw CoreError.internal("reading the checkpoints failed", error)
        }
        guard let newest else {
            throw CoreError(.notFound, "the log has no signed checkpoint yet (one is written within 10 s of activity, and at shutdown)")
        }
        return newest
    }

    /// Checkpoints attesting seqs from `fromSeq` on, oldest first, at most `limit` (1…1000).
    public func listCheckpoints(fromSeq: UInt64, limit: Int) async throws(CoreError) -> [StoredLogCheckpoint] {
        guard (1...1000).contains(limit) else { throw CoreError.invalidArgument("limit", "must be between 1 and 1000") }
        try await context.awaitProjections()
        do {
            return try await context.store.logCheckpoints(fromSeq: fromSeq, limit: limit)
        } catch {
            throw CoreError.internal("reading the checkpoints failed", error)
        }
    }

    /// The proof of event `seq` under the first checkpoint that attests it.
    public func getProof(seq: UInt64) async throws(CoreError) -> LogProof {
        let log = context.log
        let (first, last) = (await log.firstSeq, await log.lastSeq)
        if seq >= 1, seq < first, let retention = try? await context.store.retention(), seq <= retention.latest.lastSeq {
            throw CoreError(.beyondRetention, "event \(seq) was deleted by retention; the log holds seqs \(first)–\(last)")
        }
        guard seq >= 1, seq >= first, seq <= last else {
            throw CoreError(.notFound, "the log holds seqs \(first)–\(last); there is no event \(seq)")
        }
        try await context.awaitProjections()
        let covering: StoredLogCheckpoint?
        do {
            covering = try await context.store.logCheckpoint(covering: seq)
        } catch {
            throw CoreError.internal("reading the checkpoints failed", error)
        }
        guard let covering else {
            throw CoreError(.notFound, "no signed checkpoint covers seq \(seq) yet (one is written within 10 s of activity)")
        }
        let end = covering.checkpoint.seq
        guard end - seq < UInt64(Self.maximumProofRecords) else {
            throw CoreError.invalidArgument(
                "seq",
                "seq \(seq) is \(end - seq) events before the first checkpoint that covers it (at seq \(end)); a proof carries at most \(Self.maximumProofRecords)"
            )
        }
        // A range recorded as lost between the seq and the checkpoint: the chain goes on across
        // it when the records after it were written after the repair, not when they were
        // written before (the checkpoint's chain then runs through records no longer held).
        let losses = log.recordedLosses.filter { $0.firstLostSeq <= $0.lastLostSeq && $0.firstLostSeq <= end && $0.lastLostSeq + 1 >= seq }
        let lossProblem = losses.first.map { loss in
            CoreError(
                .notFound,
                "no proof of seq \(seq) can be made: seqs \(loss.firstLostSeq)–\(loss.lastLostSeq) were lost (\(loss.defect), in \(loss.segment)) and the first checkpoint that covers seq \(seq), at seq \(end), attests a chain through them"
            )
        }
        do {
            guard let before = try await log.chainValue(after: seq - 1) else {
                if let lossProblem { throw lossProblem }
                if let loss = log.recordedLosses.last(where: { $0.firstLostSeq <= $0.lastLostSeq && $0.firstLostSeq < seq }) {
                    throw CoreError(
                        .notFound,
                        "no proof of seq \(seq) can be made: the chain value before it is not known, its batch following seqs \(loss.firstLostSeq)–\(loss.lastLostSeq), which were lost (\(loss.defect), in \(loss.segment))"
                    )
                }
                throw CoreError(.notFound, "seq \(seq) is from before the log's hash chain started")
            }
            var records: [LogProof.Record] = []
            records.reserveCapacity(Int(end - seq + 1))
            var next = seq
            while next <= end {
                let batch = try await log.read(from: next, maxRecords: Int(min(end - next + 1, 65_536)))
                guard let lastRead = batch.last else { break }
                for record in batch where record.seq <= end {
                    records.append(LogProof.Record(seq: record.seq, bytes: Array(record.payload.readableBytesView)))
                }
                next = lastRead.seq + 1
            }
            let proof = LogProof(
                seq: seq,
                chainBefore: before,
                records: records,
                checkpoint: covering.checkpoint,
                checkpointRecordSeq: covering.recordSeq
            )
            if let lossProblem {
                do { try proof.verify() } catch { throw lossProblem }
            }
            return proof
        } catch let error as CoreError {
            throw error
        } catch {
            throw CoreError.internal("reading the log for a proof failed", error)
        }
    }

    /// Checks every span of a trace against the signed checkpoints that cover it: the spans'
    /// records hash, with every record between, to a checkpoint's chain value, and the
    /// checkpoint is signed by this server's key (or one it rotated from). What the dashboard's
    /// "verified" mark shows.
    public func verifyTrace(_ traceId: String) async throws(CoreError) -> TraceVerification {
        let (spans, _, _) = try await traces.getTrace(traceId)
        let spanIDs = Dictionary(spans.map { ($0.seq, $0.span.spanId) }, uniquingKeysWith: { first, _ in first })
        let trusted = await trustedKeys()
        return await TraceVerification.check(
            traceId: traceId,
            seqs: spans.map(\.seq),
            proof: { seq throws(CoreError) in try await getProof(seq: seq) },
            keyProblem: { checkpoint in
                trusted.contains(checkpoint.publicKey)
                    ? nil : "the checkpoint at seq \(checkpoint.seq) is signed by key \(checkpoint.keyID), which this server does not sign with"
            },
            spanProblem: { seq, span in
                let shown = spanIDs[seq] ?? nil
                return span.spanId == shown ? nil : "the record at seq \(seq) is span \(span.spanId ?? "-"), not the trace's span \(shown ?? "-")"
            }
        )
    }

    /// The keys this server's checkpoints are signed with: the current one and every key it
    /// rotated from (announced in the log by the key before it).
    func trustedKeys() async -> Set<[UInt8]> {
        var keys: Set<[UInt8]> = []
        if let checkpoints { keys.insert(await checkpoints.publicKey) }
        // Every rotation in the log; a key that announced a trusted key is trusted, back to the first.
        var rotations: [LogCheckpoint] = []
        var from: UInt64 = 0
        while let page = try? await context.store.logCheckpoints(fromSeq: from, limit: 1000), !page.isEmpty {
            rotations += page.map(\.checkpoint).filter { $0.nextPublicKey != nil }
            guard let last = page.last, page.count == 1000 else { break }
            from = last.checkpoint.seq + 1
        }
        keys.formUnion(KeyRotations(rotations).keys(announcing: keys))
        return keys
    }

    /// Rotates the signing key (``CheckpointWriter/rotateKey()``).
    public func rotateSigningKey() async throws(CoreError) -> StoredLogCheckpoint {
        guard let checkpoints else { throw CoreError(.conflict, "this server writes no checkpoints") }
        return try await checkpoints.rotateKey()
    }
}
