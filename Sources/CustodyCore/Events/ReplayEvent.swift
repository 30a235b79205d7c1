/// How a replay runs (docs/api.md).
public enum ReplayMode: String, Sendable, Hashable, CaseIterable, EncodedTag {
    case dryRun = "dry-run"
    case live

    var tag: UInt8 { self == .dryRun ? 1 : 2 }

    /// A mode as a request names it: `dry-run` (the default when absent) or `live`.
    public init(parsing name: String?) throws(CoreError) {
        guard let name else {
            self = .dryRun
            return
        }
        guard let mode = ReplayMode(rawValue: name) else { throw CoreError.invalidArgument("mode", "must be dry-run or live") }
        self = mode
    }
}

/// `replay.started` and `replay.completed`.
public struct ReplayEvent: Sendable, Hashable {
    public var newTrace: String
    public var fromTrace: String
    public var mode: ReplayMode
    public var speed: Double
    /// Spans replayed (0 when started).
    public var spans: UInt32
    public var status: ReplayStatus

    public init(newTrace: String, fromTrace: String, mode: ReplayMode, speed: Double, spans: UInt32, status: ReplayStatus) {
        self.newTrace = newTrace
        self.fromTrace = fromTrace
        self.mode = mode
        self.speed = speed
        self.spans = spans
        self.status = status
    }
}

/// Where a replay stands: `running`, `completed`, `aborted` or `failed` (docs/api.md). A value
/// read from an older log or another writer keeps whatever text it had.
public struct ReplayStatus: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: String

    public init(rawValue: String) { self.rawValue = rawValue }

    /// Started and not yet completed.
    public static let running = ReplayStatus(rawValue: "running")
    /// Every span replayed.
    public static let completed = ReplayStatus(rawValue: "completed")
    /// Stopped before the end (the server stopped, or a live call failed).
    public static let aborted = ReplayStatus(rawValue: "aborted")
    /// Could not run at all.
    public static let failed = ReplayStatus(rawValue: "failed")

    public var description: String { rawValue }
}
