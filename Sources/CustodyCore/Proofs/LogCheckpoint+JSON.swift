import CustodyLog

extension LogCheckpoint {
    /// `{"seq", "chain", "at", "at_ns", "key_id", "public_key", "signature"}` (docs/api.md,
    /// "Custody proofs"), with `next_key_id` and `next_public_key` when it rotates the key and
    /// `checkpoint_seq`, the seq of the `log.checkpoint` event itself, when known. `at_ns` is the
    /// signed time; `at` is the same instant in RFC 3339, for people.
    public func jsonValue(recordSeq: UInt64? = nil) -> JSONValue {
        var object: [String: JSONValue] = [
            "seq": .integer(Int64(bitPattern: seq)), "chain": .string(chain.hex), "at": .string(RFC3339.format(at)),
            "at_ns": .integer(at), "key_id": .string(keyID), "public_key": .string(Hex.encode(publicKey)),
            "signature": .string(Hex.encode(signature)),
        ]
        if let nextPublicKey {
            object["next_public_key"] = .string(Hex.encode(nextPublicKey))
            object["next_key_id"] = .string(Self.keyID(of: nextPublicKey))
        }
        if let recordSeq { object["checkpoint_seq"] = .integer(Int64(bitPattern: recordSeq)) }
        return .object(object)
    }

    /// A checkpoint as ``jsonValue(recordSeq:)`` writes it (what `custody log checkpoint --save`
    /// saves). Every field is checked: its type, its length, and that `key_id` is the public
    /// key's; the signature is not (``hasValidSignature`` says whether it holds). Throws
    /// ``CoreError/Code/invalidArgument`` naming the field.
    public init(json: JSONValue) throws(CoreError) {
        guard case .object(let object) = json else { throw CoreError.invalidArgument("checkpoint", "must be a JSON object") }
        func hex(_ name: String, length: Int) throws(CoreError) -> [UInt8] {
            guard case .string(let text) = object[name] ?? .null, let bytes = Hex.decode(text), bytes.count == length else {
                throw CoreError.invalidArgument(name, "must be \(2 * length) hex digits")
            }
            return bytes
        }
        guard case .integer(let seq) = object["seq"] ?? .null, seq >= 0 else {
            throw CoreError.invalidArgument("seq", "must be a non-negative integer")
        }
        let at: Int64
        if case .integer(let nanoseconds) = object["at_ns"] ?? .null {
            at = nanoseconds
        } else if case .string(let text) = object["at"] ?? .null, let nanoseconds = RFC3339.nanoseconds(text) {
            at = nanoseconds
        } else {
            throw CoreError.invalidArgument("at_ns", "must be an integer (nanoseconds since the Unix epoch)")
        }
        let publicKey = try hex("public_key", length: Self.publicKeyLength)
        var next: [UInt8]?
        if let value = object["next_public_key"], value != .null { next = try hex("next_public_key", length: Self.publicKeyLength) }
        self.init(
            seq: UInt64(seq),
            chain: ChainValue(bytes: try hex("chain", length: ChainValue.byteCount))!,
            at: at,
            publicKey: publicKey,
            nextPublicKey: next,
            signature: try hex("signature", length: Self.signatureLength)
        )
        if let value = object["key_id"], value != .string(keyID) {
            throw CoreError.invalidArgument("key_id", "is not the id of public_key (\(keyID))")
        }
    }
}
