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
