extension Duration {
    /// The duration in seconds, as a `Double` (for reports and metrics).
    public var inSeconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }

    /// The duration in milliseconds, as a `Double` (spans' `duration_ms`).
    public var inMilliseconds: Double { inSeconds * 1000 }
}
