import CustodyLog
import Synchronization

/// Where an online rebuild stands (`/api/admin/stats`'s `rebuild.state`).
public struct RebuildPhase: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }

    /// No rebuild since the server started.
    public static let idle = RebuildPhase(rawValue: "idle")
    /// Asked for, or running.
    public static let building = RebuildPhase(rawValue: "building")
    /// The last rebuild was swapped in.
    public static let done = RebuildPhase(rawValue: "done")
    /// The last rebuild failed (or the server stopped during it); the old projections serve on.
    public static let failed = RebuildPhase(rawValue: "failed")

    public var description: String { rawValue }
}

/// Online rebuilds of a running runtime's projections (`POST /api/admin/rebuild`), one at a
/// time: ``start()`` asks for one and returns at once; ``run(_:)`` — one of the runtime's
/// services — carries it out (``ProjectionRebuild/rebuildOnline(projector:snapshots:progress:)``), so a
/// rebuild under way is cancelled and awaited when the runtime stops, never left running.
/// ``status`` reports its progress (events applied of the head, rate, ETA) and outcome.
public final class RebuildController: Sendable {
    private struct State: Sendable {
        var phase = RebuildPhase.idle
        var applied: UInt64 = 0
        var head: UInt64 = 0
        var started: ContinuousClock.Instant?
        var startedAt: Int64?
        var finishedAt: Int64?
        var events: UInt64?
        var seconds: Double?
        var error: String?
    }

    private let state = Mutex(State())
    private let requested = WakeSignal()

    public init() {}

    /// Asks for a rebuild unless one is asked for or running; returns whether it was.
    public func start() -> Bool {
        let started = state.withLock { state -> Bool in
            guard state.phase != .building else { return false }
            state = State(phase: .building, started: .now, startedAt: LogTime.now())
            return true
        }
        if started { requested.fire() }
        return started
    }

    /// Carries out the rebuilds asked for until cancelled; a rebuild running then is cancelled
    /// (recorded as failed) before it returns.
    /// `storage` keeps a rebuild and a retention pass apart (key `logFiles`): a rebuild reads the
    /// log from its first seq, which a pass moves.
    func run(_ projector: Projector, snapshots: StateSnapshots?, storage: KeyedSerializer, key: String) async {
        while !Task.isCancelled {
            await requested.wait()
            guard !Task.isCancelled else { break }
            guard state.withLock({ $0.phase == .building }) else { continue }
            await storage.acquire(key)
            defer { storage.release(key) }
            do {
                let report = try await ProjectionRebuild.rebuildOnline(projector: projector, snapshots: snapshots) { applied, head in
                    self.state.withLock {
                        $0.applied = applied
                        $0.head = head
                    }
                }
                state.withLock {
                    $0.phase = .done
                    $0.events = report.events
                    $0.seconds = report.seconds
                    $0.finishedAt = LogTime.now()
                }
            } catch {
                let message = Task.isCancelled ? "the server stopped during the rebuild" : "\(error)"
                state.withLock {
                    $0.phase = .failed
                    $0.error = message
                    $0.finishedAt = LogTime.now()
                }
            }
        }
        state.withLock { state in
            if state.phase == .building {
                state.phase = .failed
                state.error = "the server stopped before the rebuild ran"
                state.finishedAt = LogTime.now()
            }
        }
    }

    /// docs/api.md's `rebuild` object.
    public var status: JSONValue {
        state.withLock { state in
            var fields: [String: JSONValue] = ["state": .string(state.phase.rawValue)]
            if let startedAt = state.startedAt { fields["started_at"] = .string(RFC3339.format(startedAt)) }
            if let finishedAt = state.finishedAt { fields["finished_at"] = .string(RFC3339.format(finishedAt)) }
            if state.phase == .building, let started = state.started {
                let elapsed = (ContinuousClock.now - started).inSeconds
                let rate = elapsed > 0 ? Double(state.applied) / elapsed : 0
                fields["applied_seq"] = .integer(Int64(state.applied))
                fields["head_seq"] = .integer(Int64(state.head))
                fields["events_per_second"] = .number(rate)
                fields["eta_seconds"] = rate > 0 && state.head >= state.applied ? .number(Double(state.head - state.applied) / rate) : .null
            }
            if let events = state.events { fields["events"] = .integer(Int64(events)) }
            if let seconds = state.seconds { fields["seconds"] = .number(seconds) }
            if let error = state.error { fields["error"] = .string(error) }
            return .object(fields)
        }
    }
}
