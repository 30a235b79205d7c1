/// What retention deletes (docs/operations.md, "Retention"): whole sealed segments, oldest
/// first, while the oldest is older than ``maxAge`` or the log is larger than ``maxBytes``. Off
/// when neither is set (the default: the log is the record).
public struct RetentionPolicy: Sendable, Hashable {
    /// Segments whose newest record is older than this go.
    public var maxAge: Duration?
    /// Segments go, oldest first, while the log's segments take more bytes than this.
    public var maxBytes: Int64?
    /// How often a pass looks.
    public var checkInterval: Duration = .seconds(60)
    /// Where a pass stops and waits to be killed, for the crash tests
    /// (`CUSTODY_RETENTION_STOP_AT`: `after-snapshot`, `after-record`, `between-deletions`).
    public var stopAt: String?

    public init(maxAge: Duration? = nil, maxBytes: Int64? = nil, checkInterval: Duration = .seconds(60)) {
        self.maxAge = maxAge
        self.maxBytes = maxBytes
        self.checkInterval = checkInterval
    }

    public var isEnabled: Bool { maxAge != nil || maxBytes != nil }

    /// `retention.max_age`: a plain number of seconds, or a number with `s`, `m`, `h`, `d` or `w`
    /// (`7d`). At least one second.
    public static func age(parsing text: String) throws(CoreError) -> Duration {
        let units: [(String, Int64)] = [("w", 604_800), ("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)]
        guard let seconds = quantity(text, units: units, limit: Int64.max / 1_000_000_000) else {
            throw CoreError.invalidArgument(
                "retention.max_age",
                "takes seconds or a number with s, m, h, d or w (7d), at least 1 s; not \(text.prefix(40))"
            )
        }
        return .seconds(seconds)
    }

    /// `retention.max_bytes`: a plain number of bytes, or a number with `KB`, `MB`, `GB`, `TB`
    /// (powers of 1000) or `KiB`, `MiB`, `GiB`, `TiB` (powers of 1024): `50GiB`.
    public static func bytes(parsing text: String) throws(CoreError) -> Int64 {
        let units: [(String, Int64)] = [
            ("KiB", 1 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30), ("TiB", 1 << 40),
            ("KB", 1_000), ("MB", 1_000_000), ("GB", 1_000_000_000), ("TB", 1_000_000_000_000), ("B", 1),
        ]
        guard let bytes = quantity(text, units: units, limit: Int64.max) else {
            throw CoreError.invalidArgument(
                "retention.max_bytes",
                "takes bytes or a number with KB, MB, GB, TB, KiB, MiB, GiB or TiB (50GiB), at least 1; not \(text.prefix(40))"
            )
        }
        return bytes
    }

    /// A whole number of at least 1, optionally followed by the first of `units` it ends with
    /// (spaces allowed around either), times that unit's factor; nil when it is not one or the
    /// product passes `limit`.
    private static func quantity(_ text: String, units: [(String, Int64)], limit: Int64) -> Int64? {
        let trimmed = text.trimmingWhitespace
        let unit = units.first { trimmed.hasSuffix($0.0) } ?? ("", 1)
        guard let value = Int64(trimmed.dropLast(unit.0.count).trimmingWhitespace), value >= 1, value <= limit / unit.1 else {
            return nil
        }
        return value * unit.1
    }
}

extension StringProtocol {
    fileprivate var trimmingWhitespace: String {
        String(drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed())
    }
}
