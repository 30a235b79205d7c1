import CustodyCore
import CustodyLog
import CustodyLogTesting
import Foundation
import NIOCore
import Testing

/// The parsers of what clients hand back — receipts (`SEQ:HEX`), saved checkpoints and proofs
/// (JSON) — on random and mutated input: a clear error or the right value, never a crash, and a
/// parsed checkpoint's signature holds only when nothing signed was changed.
@Suite struct ProofParserFuzzTests {
    @Test func receiptsParseExactlyTheCanonicalForm() throws {
        let good = "42:" + String(repeating: "ab", count: 32)
        #expect(try Receipt(parsing: good) == Receipt(seq: 42, chain: ChainValue(hex: String(repeating: "ab", count: 32))!))
        var random = SplitMix64(seed: 11)
        let alphabet = Array("0123456789abcdefABCDEF:-+ x\u{0}é")
        for _ in 0..<50_000 {
            var characters = Array(good)
            for _ in 0...Int(random.next(upperBound: 4)) {
                let at = Int(random.next(upperBound: UInt64(characters.count + 1)))
                switch random.next(upperBound: 3) {
                case 0 where at < characters.count: characters.remove(at: at)
                case 1: characters.insert(alphabet[Int(random.next(upperBound: UInt64(alphabet.count)))], at: at)
                default: if at < characters.count { characters[at] = alphabet[Int(random.next(upperBound: UInt64(alphabet.count)))] }
                }
            }
            let text = String(characters)
            if let receipt = try? Receipt(parsing: text) {
                // Whatever parses prints back to itself, up to the case of the hex digits.
                #expect(receipt.description == text.lowercased(), "\(text)")
            }
        }
    }

    @Test func checkpointsAndProofsRejectMalformedJSONAndKeepSignaturesHonest() throws {
        let key = SigningKey.generate()
        let chain = ChainValue.zero.next(seq: 77, bytes: ByteBuffer(bytes: [1, 2, 3]))
        let checkpoint = try LogCheckpoint(head: ChainHead(seq: 77, chain: chain), at: 123_456, key: key)
        let proof = LogProof(
            seq: 77,
            chainBefore: .zero,
            records: [.init(seq: 77, bytes: [1, 2, 3])],
            checkpoint: checkpoint,
            checkpointRecordSeq: 78
        )
        let texts = [checkpoint.jsonValue(recordSeq: 78).jsonText.description, proof.jsonValue.jsonText.description]
        #expect(try LogCheckpoint(json: checkpoint.jsonValue()) == checkpoint)
        #expect(try LogProof(json: proof.jsonValue) == proof)
        #expect(try proof.verify(trusting: key.publicKey) == proof.records)
        var random = SplitMix64(seed: 12)
        for _ in 0..<20_000 {
            var bytes = Array(texts[Int(random.next(upperBound: 2))].utf8)
            for _ in 0...Int(random.next(upperBound: 3)) {
                let at = Int(random.next(upperBound: UInt64(bytes.count)))
                bytes[at] = UInt8(truncatingIfNeeded: random.next())
            }
            guard let json = try? JSONDecoder().decode(JSONValue.self, from: Data(bytes)) else { continue }
            if let parsed = try? LogCheckpoint(json: json), parsed.hasValidSignature {
                // A valid signature survives only if the signed fields are the original ones.
                #expect(parsed.signedMessage == checkpoint.signedMessage && parsed.signature == checkpoint.signature)
            }
            if let parsed = try? LogProof(json: json), (try? parsed.verify(trusting: key.publicKey)) != nil {
                #expect(parsed.records == proof.records && parsed.chainBefore == proof.chainBefore)
            }
        }
    }
}
