import Synchronization

/// Appends requests' closing `response_sent` spans off the answer's path, and owns that work:
/// the adapters hand a finished request over with ``record(_:status:)`` (it returns at once),
/// and ``run(_:)`` — one of the runtime's services — appends what has gathered, several requests
/// in one append. It lingers ``linger`` after the first closing of an append (unless
/// ``lingerCount`` have gathered): at a few hundred requests/s most appends would otherwise
/// hold one span, and each append is a batch in the log with 80 bytes of header and chain value
/// (docs/benchmarks.md P8). On shutdown (cancellation) it appends what is still queued before it
/// returns, so nothing runs after the runtime has stopped.
///
/// Best effort, as docs/api.md says: the request's own events are durable before it answers;
/// a failed append here loses only these spans.
public final class ResponseRecorder: Sendable {
    private struct State {
        var queue: [(RequestTrace, Int)] = []
        /// Closing spans taken from the queue and not yet appended.
        var appending = 0
        var idleWaiters: [CheckedContinuation<Void, Never>] = []
        var isIdle: Bool { queue.isEmpty && appending == 0 }
    }

    private let state = Mutex(State())
    private let signal = WakeSignal()
    /// How long the first closing of an append waits for others.
    let linger: Duration
    /// How many closings make an append without waiting longer.
    static let lingerCount = 64

    public init(linger: Duration = .milliseconds(20)) {
        self.linger = linger
    }

    /// Queues the closing span of a request answered with `status` (0 for an RPC that ended OK).
    public func record(_ request: RequestTrace, status: Int) {
        guard request.receivedSpan != nil else { return }
        state.withLock { $0.queue.append((request, status)) }
        signal.fire()
    }

    /// Returns once every closing span handed over so far has been appended (or its append has
    /// failed): what a test waits for before it reads a request's whole trace.
    public func idle() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let now = state.withLock { state -> Bool in
                if state.isIdle { return true }
                state.idleWaiters.append(continuation)
                return false
            }
            if now { continuation.resume() }
        }
    }

    /// Appends queued closing spans until cancelled, then appends what is left and returns.
    func run(_ context: CoreContext) async {
        while true {
            await signal.wait()
            if !Task.isCancelled && state.withLock({ $0.queue.count }) < Self.lingerCount {
                try? await Task.sleep(for: linger)
            }
            let batch = state.withLock { state in
                defer {
                    state.appending += state.queue.count
                    state.queue.removeAll(keepingCapacity: true)
                }
                return state.queue
            }
            if !batch.isEmpty { await context.recordResponses(batch) }
            let (waiters, empty) = state.withLock { state -> ([CheckedContinuation<Void, Never>], Bool) in
                state.appending -= batch.count
                guard state.isIdle else { return ([], false) }
                defer { state.idleWaiters = [] }
                return (state.idleWaiters, true)
            }
            for waiter in waiters { waiter.resume() }
            if Task.isCancelled && empty { return }
        }
    }
}
