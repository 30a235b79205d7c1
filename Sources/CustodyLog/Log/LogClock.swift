#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The monotonic clock a log's timers read: when an interval fsync is due and how old a segment
/// is. The default is ``SystemLogClock``; tests pass one they advance by hand
/// (`ManualLogClock` in `CustodyLogTesting`), so a timer's effect is checked without sleeping.
///
/// Rules: ``now()`` never decreases; ``sleep(until:)`` returns once ``now()`` has reached the
/// deadline (at once if it has), and throws `CancellationError` when its task is cancelled.
public protocol LogClock: Sendable {
    /// The time since the clock's origin.
    func now() -> Duration
    /// Waits until ``now()`` reaches `deadline`.
    func sleep(until deadline: Duration) async throws
}

/// ``LogClock`` over the system's monotonic clock (`ContinuousClock`).
public struct SystemLogClock: LogClock {
    private let origin = ContinuousClock.now

    public init() {}

    public func now() -> Duration { ContinuousClock.now - origin }

    public func sleep(until deadline: Duration) async throws {
        try await Task.sleep(until: origin + deadline, clock: .continuous)
    }
}

/// Wall-clock time as the log stamps records.
public enum LogTime {
    /// Nanoseconds since the Unix epoch, from the real-time clock.
    public static func now() -> Int64 {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Int64(spec.tv_sec) * 1_000_000_000 + Int64(spec.tv_nsec)
    }
}
