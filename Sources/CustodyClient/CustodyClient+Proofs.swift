import NIOHTTP1

/// Custody proofs (docs/api.md, "Custody proofs"): signed checkpoints, proofs, trace verification.
extension CustodyClient {
    /// `GET /api/log/checkpoint`: the newest signed checkpoint.
    public func getCheckpoint() async throws(CustodyClientError) -> SignedCheckpoint {
        try await send(.GET, "/api/log/checkpoint")
    }

    /// `GET /api/log/checkpoints?from_seq=`: checkpoints attesting seqs from `fromSeq`, oldest first.
    public func listCheckpoints(fromSeq: UInt64 = 0, limit: Int = 100) async throws(CustodyClientError) -> [SignedCheckpoint] {
        struct Answer: Decodable { var checkpoints: [SignedCheckpoint] }
        return try await send(.GET, "/api/log/checkpoints", query: [("from_seq", String(fromSeq)), ("limit", String(limit))], as: Answer.self)
            .checkpoints
    }

    /// `GET /api/log/proof?seq=N`: what proves event N offline (docs/api.md): the chain value
    /// before it, every record from N to the first checkpoint that covers it, and that checkpoint.
    public func getProof(seq: UInt64) async throws(CustodyClientError) -> EventProof {
        try await send(.GET, "/api/log/proof", query: [("seq", String(seq))])
    }

    /// `GET /api/traces/{id}/verification`: the server's check of a trace's spans against its
    /// signed checkpoints.
    public func verifyTrace(_ traceId: String) async throws(CustodyClientError) -> JSON {
        try await send(.GET, "/api/traces/" + Self.percentEncoded(traceId) + "/verification")
    }

    /// `POST /api/admin/signing-key/rotate` (role admin): the checkpoint that announces the new key.
    public func rotateSigningKey() async throws(CustodyClientError) -> SignedCheckpoint {
        try await send(.POST, "/api/admin/signing-key/rotate")
    }
}

/// A signed checkpoint of the log's hash chain, as `GET /api/log/checkpoint` answers it: what
/// `custody log checkpoint --save` keeps and `custody log verify --checkpoint` checks.
public struct SignedCheckpoint: Sendable, Hashable, Codable {
    public var seq: UInt64
    public var chain: String
    public var at: String
    /// The signed time, nanoseconds since the Unix epoch.
    public var atNs: Int64
    public var keyId: String
    public var publicKey: String
    public var signature: String
    public var nextPublicKey: String?
    public var nextKeyId: String?
    /// The seq of the `log.checkpoint` event itself.
    public var checkpointSeq: UInt64?
}

/// The proof of an event, as `GET /api/log/proof` answers it. CustodyCore's `LogProof` checks it;
/// every number is decoded exactly (the checkpoint's `at_ns` is signed).
public struct EventProof: Sendable, Hashable, Codable {
    public struct Record: Sendable, Hashable, Codable {
        public var seq: UInt64
        /// The record's bytes, base64.
        public var bytes: String
    }

    public var seq: UInt64
    /// The chain value after seq − 1, 64 hex digits.
    public var chainBefore: String
    public var records: [Record]
    public var checkpoint: SignedCheckpoint
}
