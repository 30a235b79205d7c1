import CustodyLog
import CustodyLogTesting
import Testing

@Suite struct CRC32CTests {
    @Test func standardCheckValue() {
        // The CRC-32C check value (RFC 3720, appendix B.4 and the CRC catalogue).
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(CRC32C.portableChecksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(CRC32C.checksum([UInt8]()) == 0)
        // RFC 3720 B.4: 32 bytes of zeros, and of 0xFF.
        #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
        #expect(CRC32C.checksum([UInt8](repeating: 0xFF, count: 32)) == 0x62A8_AB43)
    }

    @Test func hardwareAndPortableAgreeOnEveryLengthAndAlignment() {
        var random = SplitMix64(seed: 42)
        let data = (0..<4096).map { _ in UInt8(truncatingIfNeeded: random.next()) }
        for length in 0..<300 {
            for start in 0..<9 {
                let slice = Array(data[start..<(start + length)])
                #expect(CRC32C.checksum(slice) == CRC32C.portableChecksum(slice))
            }
        }
    }

    @Test func incrementalEqualsOneShot() {
        let data = Array("The quick brown fox jumps over the lazy dog, again and again.".utf8)
        for split in 0...data.count {
            let first = data[..<split].withUnsafeBytes { CRC32C.update(0, $0) }
            let both = data[split...].withUnsafeBytes { CRC32C.update(first, $0) }
            #expect(both == CRC32C.checksum(data))
        }
    }
}
