/// How a replay runs (docs/api.md).
public enum ReplayMode: String, Sendable, Hashable, CaseIterable, EncodedTag {
    case dryRun = "dry-run"
    case live

    var tag: UInt8 { self == .dryRun ? 1 : 2 }
}

/// `replay.started` and `replay.completed`.
public struct ReplayEvent: Sendable, Hashable {
    public var newTrace: String
    public var fromTrace: String
    public var mode: ReplayMode
    public var speed: Double
    /// Spans replayed (0 when started).
    public var spans: UInt32
    /// `running`, `completed`, `aborted`, or `failed`.
    public var status: String

    public init(newTrace: String, fromTrace: String, mode: ReplayMode, speed: Double, spans: UInt32, status: String) {
        self.newTrace = newTrace
        self.fromTrace = fromTrace
        self.mode = mode
        self.speed = speed
        self.spans = spans
        self.status = status
    }
}
