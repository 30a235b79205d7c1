import CustodyCore
import CustodyLog
import Synchronization

/// `POST /api/admin/rebuild`: one online rebuild at a time, run in the background; its progress
/// (events applied of the head, rate, ETA) and outcome are shown in `/api/admin/stats`.
final class AdminRebuild: Sendable {
    private struct State: Sendable {
        var phase = "idle"
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

    /// Starts a rebuild unless one is running; returns whether it started.
    func start(runtime: CoreRuntime) -> Bool {
        let started = state.withLock { state -> Bool in
            guard state.phase != "building" else { return false }
            state = State(phase: "building", started: .now, startedAt: SegmentLog.now())
            return true
        }
        guard started else { return false }
        Task {
            do {
                let report = try await ProjectionRebuild.rebuildOnline(projector: runtime.projector) { applied, head in
                    self.state.withLock {
                        $0.applied = applied
                        $0.head = head
                    }
                }
                state.withLock {
                    $0.phase = "done"
                    $0.events = report.events
                    $0.seconds = report.seconds
                    $0.finishedAt = SegmentLog.now()
                }
            } catch {
                state.withLock {
                    $0.phase = "failed"
                    $0.error = "\(error)"
                    $0.finishedAt = SegmentLog.now()
                }
            }
        }
        return true
    }

    var status: JSONValue {
        state.withLock { state in
            var fields: [String: JSONValue] = ["state": .string(state.phase)]
            if let startedAt = state.startedAt { fields["started_at"] = .string(RFC3339.format(startedAt)) }
            if let finishedAt = state.finishedAt { fields["finished_at"] = .string(RFC3339.format(finishedAt)) }
            if state.phase == "building", let started = state.started {
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
