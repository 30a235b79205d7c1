import CustodyCore
import Testing

/// `retention.max_age` and `retention.max_bytes` as an operator writes them (docs/operations.md,
/// "Retention"): plain numbers are seconds and bytes, units as documented, and anything else is
/// refused with the setting named.
struct RetentionPolicyTests {
    @Test(arguments: [
        ("604800", 604_800), ("7d", 604_800), ("2w", 1_209_600), ("12h", 43_200), ("30m", 1_800), ("45s", 45), (" 1 ", 1),
    ])
    func agesParse(_ text: String, _ seconds: Int64) throws {
        #expect(try RetentionPolicy.age(parsing: text) == .seconds(seconds))
    }

    @Test(arguments: [
        ("1000", 1_000), ("50GiB", 50 << 30), ("500MB", 500_000_000), ("64KiB", 65_536), ("2TB", 2_000_000_000_000), ("10B", 10),
        ("3 GiB", 3 << 30),
    ])
    func sizesParse(_ text: String, _ bytes: Int64) throws {
        #expect(try RetentionPolicy.bytes(parsing: text) == bytes)
    }

    @Test(arguments: ["", "0", "-5", "7x", "d", "1.5d", "99999999999999999999w", "seven days"])
    func badAgesAreRefused(_ text: String) {
        #expect {
            _ = try RetentionPolicy.age(parsing: text)
        } throws: { error in
            (error as? CoreError)?.code == .invalidArgument && (error as? CoreError)?.message.contains("retention.max_age") == true
        }
    }

    @Test(arguments: ["", "0", "-1", "12XB", "GiB", "1.5GiB", "9999999999TiB", "lots"])
    func badSizesAreRefused(_ text: String) {
        #expect {
            _ = try RetentionPolicy.bytes(parsing: text)
        } throws: { error in
            (error as? CoreError)?.code == .invalidArgument && (error as? CoreError)?.message.contains("retention.max_bytes") == true
        }
    }

    @Test func offUnlessALimitIsSet() {
        #expect(!RetentionPolicy().isEnabled)
        #expect(RetentionPolicy(maxAge: .seconds(60)).isEnabled && RetentionPolicy(maxBytes: 1).isEnabled)
    }
}
