import CustodyCore
import Hummingbird

/// Query parameters of the wrong form are `invalid_argument` naming the parameter.
enum QueryValues {
    static func integer(_ text: String?, _ name: String) throws(CoreError) -> Int? {
        guard let text else { return nil }
        guard let value = Int(text) else { throw CoreError.invalidArgument(name, "must be an integer") }
        return value
    }

    static func number(_ text: String?, _ name: String) throws(CoreError) -> Double? {
        guard let text else { return nil }
        guard let value = Double(text), value.isFinite else { throw CoreError.invalidArgument(name, "must be a number") }
        return value
    }

    /// A step: seconds (`30`), or a number with `ms`, `s`, `m` or `h` (`500ms`, `1m`); in
    /// nanoseconds.
    static func step(_ text: String?, _ name: String) throws(CoreError) -> Int64? {
        guard let text else { return nil }
        let units: [(String, Double)] = [("ms", 1e6), ("s", 1e9), ("m", 60e9), ("h", 3600e9)]
        let (number, scale) = units.first { text.hasSuffix($0.0) }.map { (String(text.dropLast($0.0.count)), $0.1) } ?? (text, 1e9)
        guard let value = Double(number), value.isFinite, value > 0, value * scale < 1e18 else {
            throw CoreError.invalidArgument(name, "must be a positive duration: seconds, or with ms, s, m or h (30s, 1m)")
        }
        return Int64(value * scale)
    }

    static func instant(_ text: String?, _ name: String) throws(CoreError) -> Int64? {
        guard let text else { return nil }
        guard let value = RFC3339.nanoseconds(text, clamping: true) else { throw CoreError.invalidArgument(name, "must be an RFC 3339 timestamp") }
        return value
    }

    static func boolean(_ text: String?, _ name: String) throws(CoreError) -> Bool? {
        guard let text else { return nil }
        switch text {
        case "true", "1": return true
        case "false", "0": return false
        default: throw CoreError.invalidArgument(name, "must be true or false")
        }
    }
}
