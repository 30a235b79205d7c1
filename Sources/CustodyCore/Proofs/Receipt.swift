import CustodyLog

/// What an acknowledged write gets back (docs/api.md, "Custody proofs"): the seq of its last
/// event and the hash chain's value after it. Whoever keeps it can later check that the log still
/// holds what it acknowledged: `custody log verify --receipt SEQ:HEX`, or a proof from
/// `GET /api/log/proof`.
public struct Receipt: Sendable, Hashable, Codable, CustomStringConvertible {
    public var seq: UInt64
    public var chain: ChainValue

    public init(seq: UInt64, chain: ChainValue) {
        self.seq = seq
        self.chain = chain
    }

    /// The receipt of an append; nil when the log runs without the chain.
    public init?(_ receipt: AppendReceipt) {
        guard let chain = receipt.chain else { return nil }
        self.init(seq: receipt.lastSeq, chain: chain)
    }

    /// `SEQ:HEX`, as in the `x-custody-receipt` header and `--receipt`: a decimal seq (no sign,
    /// no leading zeros), a colon, 64 hex digits.
    public init(parsing text: some StringProtocol) throws(CoreError) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let seqText = parts.first, !seqText.isEmpty, seqText.count <= 20,
            seqText.allSatisfy({ $0 >= "0" && $0 <= "9" }), seqText == "0" || !seqText.hasPrefix("0"),
            let seq = UInt64(seqText), let chain = ChainValue(hex: parts[1])
        else {
            throw CoreError.invalidArgument("receipt", "must be SEQ:HEX (a seq, a colon, 64 hex digits)")
        }
        self.init(seq: seq, chain: chain)
    }

    /// `SEQ:HEX`.
    public var description: String { "\(seq):\(chain.hex)" }

    /// `{"seq": …, "chain": "<hex>"}`.
    public var jsonValue: JSONValue {
        .object(["seq": .integer(Int64(bitPattern: seq)), "chain": .string(chain.hex)])
    }

    /// The claim a verifier checks.
    public var claim: ChainClaim { ChainClaim(seq: seq, chain: chain, source: "receipt \(seq):\(chain.hex.prefix(12))…") }
}
