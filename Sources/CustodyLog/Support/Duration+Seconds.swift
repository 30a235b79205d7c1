extension Duration {
    /// The duration in seconds, as a `Double` (for reports and metrics).
    public var inSeconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }

    /// The duration in milliseconds, as a `Double` (spans' `duration_ms`).
    public var inMilliseconds: Double { inSeconds * 1000 }
    /// Whole nanoseconds (saturating).
    public var nanoseconds: Int64 {
        let (whole, overflow) = components.seconds.multipliedReportingOverflow(by: 1_000_000_000)
        return overflow ? (components.seconds < 0 ? .min : .max) : whole &+ components.attoseconds / 1_000_000_000
    }
}
