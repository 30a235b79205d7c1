import Crypto
import CustodyLog

/// `log.checkpoint`: the server's signed statement that the log's hash chain had value `chain`
/// after seq `seq`, at time `at` (docs/log-format.md, "Signed checkpoints").
///
/// Rules:
/// - The signature is Ed25519 over ``signedMessage`` by the key whose public half is
///   ``publicKey``; ``keyID`` is derived from that public key, never stored apart from it.
/// - A checkpoint with ``nextPublicKey`` announces a rotation: it is signed with the old key,
///   and every later checkpoint is signed with the new one. A checkpoint signed by a key that no
///   earlier checkpoint announced (other than the log's first key) is a forgery as far as
///   `custody log verify` is concerned.
/// - `seq` is the end of a write acknowledged before the checkpoint was appended, so the
///   checkpoint's own record always comes after the seq it attests.
public struct LogCheckpoint: Sendable, Hashable {
    public static let publicKeyLength = 32
    public static let signatureLength = 64
    /// The first bytes of every signed message: a checkpoint signature can never be mistaken
    /// for a signature over anything else.
    static let domain = Array("CUSTODY CHECKPOINT v1".utf8) + [0]

    public var seq: UInt64
    public var chain: ChainValue
    /// When the checkpoint was made, in nanoseconds since the Unix epoch.
    public var at: Int64
    public var publicKey: [UInt8]
    /// The key that signs the checkpoints after this one, when this one rotates the key.
    public var nextPublicKey: [UInt8]?
    public var signature: [UInt8]

    public init(seq: UInt64, chain: ChainValue, at: Int64, publicKey: [UInt8], nextPublicKey: [UInt8]?, signature: [UInt8]) {
        self.seq = seq
        self.chain = chain
        self.at = at
        self.publicKey = publicKey
        self.nextPublicKey = nextPublicKey
        self.signature = signature
    }

    /// Makes and signs the checkpoint of `head` with `key`, announcing `next` when rotating.
    public init(head: ChainHead, at: Int64, key: SigningKey, announcing next: SigningKey? = nil) throws {
        self.init(seq: head.seq, chain: head.chain, at: at, publicKey: key.publicKey, nextPublicKey: next?.publicKey, signature: [])
        signature = try key.sign(signedMessage)
    }

    /// The bytes signed: the domain `CUSTODY CHECKPOINT v1` and a zero byte, seq (u64
    /// little-endian), chain (32 bytes), at (i64 little-endian), the public key (32 bytes), and
    /// the next public key (32 bytes; zeros when the checkpoint does not rotate): 134 bytes.
    public var signedMessage: [UInt8] {
        var bytes = Self.domain
        bytes.reserveCapacity(Self.domain.count + 8 + 32 + 8 + 32 + 32)
        withUnsafeBytes(of: seq.littleEndian) { bytes.append(contentsOf: $0) }
        bytes.append(contentsOf: chain.bytes)
        withUnsafeBytes(of: at.littleEndian) { bytes.append(contentsOf: $0) }
        bytes.append(contentsOf: publicKey)
        bytes.append(contentsOf: nextPublicKey ?? [UInt8](repeating: 0, count: Self.publicKeyLength))
        return bytes
    }

    /// Whether ``signature`` is a valid Ed25519 signature of ``signedMessage`` by ``publicKey``.
    public var hasValidSignature: Bool {
        guard let key = try? Curve25519.Signing.PublicKey(rawRepresentation: publicKey) else { return false }
        return key.isValidSignature(signature, for: signedMessage)
    }

    public var keyID: String { Self.keyID(of: publicKey) }
    public var nextKeyID: String? { nextPublicKey.map(Self.keyID(of:)) }

    /// A key's id: the first 8 bytes of the SHA-256 of its public key, in hex.
    public static func keyID(of publicKey: [UInt8]) -> String {
        Hex.encode(Array(SHA256.hash(data: publicKey).prefix(8)))
    }

    /// What the checkpoint claims about the chain, for ``LogDirectory/verify(acknowledged:claims:inspect:)``.
    public func claim(source: String) -> ChainClaim {
        ChainClaim(seq: seq, chain: chain, source: source)
    }
}
