import Crypto
import NIOCore

/// A value of the log's hash chain: 32 bytes of SHA-256.
///
/// `chain(n) = SHA-256(chain(n − 1) ‖ seq(n) as u64 little-endian ‖ the bytes of record n)`, and
/// the value before the first chained record is ``zero`` (32 zero bytes). The record's bytes are
/// its payload exactly as appended — for Custody, the encoded event — so every log engine that
/// stores the same records in the same order carries the same chain. docs/log-format.md ("The
/// hash chain") gives the bytes; `scripts/verify-log.py` recomputes it without Custody's code.
public struct ChainValue: Sendable, Hashable, CustomStringConvertible {
    /// The four 64-bit words of the digest, in byte order (word 0 holds bytes 0..<8, read as
    /// little-endian).
    private var words: (UInt64, UInt64, UInt64, UInt64)

    public static let byteCount = 32
    /// The value before the first record of a chain.
    public static let zero = ChainValue(words: (0, 0, 0, 0))

    private init(words: (UInt64, UInt64, UInt64, UInt64)) {
        self.words = words
    }

    /// The value held in `bytes`, which must be exactly 32 bytes.
    public init?(bytes: some Collection<UInt8>) {
        guard bytes.count == Self.byteCount else { return nil }
        var value = Self.zero
        withUnsafeMutableBytes(of: &value.words) { raw in
            for (i, byte) in bytes.enumerated() { raw[i] = byte }
        }
        self = value
    }

    /// The value written as 64 lowercase or uppercase hex digits.
    public init?(hex: some StringProtocol) {
        let utf8 = Array(hex.utf8)
        guard utf8.count == 2 * Self.byteCount else { return nil }
        var bytes = [UInt8](repeating: 0, count: Self.byteCount)
        for i in 0..<Self.byteCount {
            guard let high = Self.hexDigit(utf8[2 * i]), let low = Self.hexDigit(utf8[2 * i + 1]) else { return nil }
            bytes[i] = high << 4 | low
        }
        self.init(bytes: bytes)
    }

    private static func hexDigit(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    /// The 32 bytes.
    public var bytes: [UInt8] {
        withUnsafeBytes(of: words) { Array($0) }
    }

    /// 64 lowercase hex digits.
    public var hex: String {
        let digits = Array("0123456789abcdef".utf8)
        return withUnsafeBytes(of: words) { raw in
            String(unsafeUninitializedCapacity: 64) { out in
                for (i, byte) in raw.enumerated() {
                    out[2 * i] = digits[Int(byte >> 4)]
                    out[2 * i + 1] = digits[Int(byte & 0xF)]
                }
                return 64
            }
        }
    }

    public var description: String { hex }

    public static func == (lhs: ChainValue, rhs: ChainValue) -> Bool {
        lhs.words == rhs.words
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(words.0)
        hasher.combine(words.1)
        hasher.combine(words.2)
        hasher.combine(words.3)
    }

    /// Writes the 32 bytes at `offset` of `destination`.
    func store(into destination: UnsafeMutableRawBufferPointer, at offset: Int) {
        withUnsafeBytes(of: words) { raw in
            UnsafeMutableRawBufferPointer(rebasing: destination[offset..<(offset + Self.byteCount)]).copyMemory(from: raw)
        }
    }

    /// The value stored at `offset` of `source`.
    static func load(from source: UnsafeRawBufferPointer, at offset: Int) -> ChainValue {
        var value = Self.zero
        withUnsafeMutableBytes(of: &value.words) { raw in
            raw.copyMemory(from: UnsafeRawBufferPointer(rebasing: source[offset..<(offset + byteCount)]))
        }
        return value
    }

    // MARK: Advancing

    /// The chain value after the record `seq` with `bytes`, this being the value before it.
    public func next(seq: UInt64, bytes: UnsafeRawBufferPointer) -> ChainValue {
        var hasher = SHA256()
        withUnsafeBytes(of: words) { hasher.update(bufferPointer: $0) }
        withUnsafeBytes(of: seq.littleEndian) { hasher.update(bufferPointer: $0) }
        hasher.update(bufferPointer: bytes)
        let digest = hasher.finalize()
        var value = Self.zero
        withUnsafeMutableBytes(of: &value.words) { out in
            digest.withUnsafeBytes { out.copyMemory(from: $0) }
        }
        return value
    }

    /// The chain value after the record `seq` with `bytes`.
    public func next(seq: UInt64, bytes: ByteBuffer) -> ChainValue {
        bytes.withUnsafeReadableBytes { next(seq: seq, bytes: $0) }
    }

    /// The chain value after `record`.
    public func next(_ record: LogRecord) -> ChainValue {
        next(seq: record.seq, bytes: record.payload)
    }
}

extension ChainValue: Codable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let value = ChainValue(hex: text) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "a chain value is 64 hex digits")
        }
        self = value
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(hex)
    }
}

/// The log's chain at a seq: the value after that record (``ChainValue/zero`` and seq 0 for a
/// log that holds nothing yet).
public struct ChainHead: Sendable, Hashable, Codable {
    public var seq: UInt64
    public var chain: ChainValue

    public init(seq: UInt64, chain: ChainValue) {
        self.seq = seq
        self.chain = chain
    }
}
