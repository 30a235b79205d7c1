import CustodyLog

/// Whether a runtime can serve what it acknowledges (`/readyz`, docs/api.md "Operations"): the log
/// can be written, the projections can be written, and they are within
/// ``Readiness/maximumLagSeconds`` of the log's head.
public struct Readiness: Sendable, Hashable {
    /// Ready means the projections are within this of the log's head.
    public static let maximumLagSeconds = 1.0

    public var lagEvents: UInt64
    public var lagSeconds: Double
    /// Why the log refuses writes, when it does.
    public var logFailure: String?
    /// Consecutive failed attempts to apply a batch to the projections.
    public var projectionFailures: Int

    public var isReady: Bool { logFailure == nil && projectionFailures == 0 && lagSeconds <= Self.maximumLagSeconds }

    /// Why it is not ready, in one sentence (nil when ready).
    public var reason: String? {
        if logFailure != nil { return "the log cannot be written" }
        if projectionFailures > 0 { return "the projections cannot be written" }
        if lagSeconds > Self.maximumLagSeconds { return "the projections are \(lagEvents) events behind the log" }
        return nil
    }

    /// docs/api.md's `lag` object.
    public var jsonValue: JSONValue {
        .object([
            "lag_events": .integer(Int64(lagEvents)), "lag_seconds": .number(lagSeconds),
            "log_failure": logFailure.map(JSONValue.string) ?? .null, "projection_failures": .integer(Int64(projectionFailures)),
        ])
    }
}

extension CoreRuntime {
    /// The runtime's readiness now.
    public func readiness() async -> Readiness {
        let lag = await projector.lag()
        return Readiness(
            lagEvents: lag.events,
            lagSeconds: lag.seconds,
            logFailure: await log.status().failure,
            projectionFailures: await projector.failures
        )
    }
}
