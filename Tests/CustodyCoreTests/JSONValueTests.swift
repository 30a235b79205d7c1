import CustodyCore
import CustodyLog
import CustodyLogTesting
import Foundation
import NIOCore
import Testing

@Suite struct JSONValueTests {
    /// Integral numbers come back as integers; everything else as it was.
    func normalized(_ value: JSONValue) -> JSONValue {
        switch value {
        case .number(let number) where number == number.rounded() && abs(number) < 1e15: .integer(Int64(number))
        case .array(let values): .array(values.map(normalized))
        case .object(let fields): .object(fields.mapValues(normalized))
        default: value
        }
    }

    @Test func textIsValidJSONThatDecodesToTheSameValue() throws {
        var random = SplitMix64(seed: 3)
        func text() -> String {
            let pieces = ["a", "\"", "\\", "/", "\n", "\u{01}", "\u{1F}", "é", "😀", "\u{7F}", "\u{2028}", " ", "中", "\t", "\r"]
            return (0..<Int(random.next() % 6)).map { _ in pieces[Int(random.next() % UInt64(pieces.count))] }.joined()
        }
        func value(_ depth: Int) -> JSONValue {
            switch random.next() % (depth > 3 ? 5 : 7) {
            case 0: return .null
            case 1: return .bool(random.next() % 2 == 0)
            case 2: return .integer(Int64(bitPattern: random.next()) >> Int64(random.next() % 60))
            case 3: return .number([0.5, -1.25, 3.0, 1e-7, 6.02e23, 123456.789][Int(random.next() % 6)])
            case 4: return .string(text())
            case 5: return .array((0..<Int(random.next() % 4)).map { _ in value(depth + 1) })
            default:
                return .object(
                    Dictionary((0..<Int(random.next() % 4)).map { ("k\($0)" + text(), value(depth + 1)) }, uniquingKeysWith: { a, _ in a })
                )
            }
        }
        for _ in 0..<2000 {
            let original = value(0)
            let encoded = original.jsonText
            let data = Data(encoded.bytes.readableBytesView)
            #expect((try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])) != nil, "\(encoded)")
            let decoded = try JSONDecoder().decode(JSONValue.self, from: data)
            #expect(decoded == normalized(original), "\(encoded)")
            // Equal values, equal text: keys are sorted.
            #expect(decoded.jsonText == encoded)
        }
    }
}
