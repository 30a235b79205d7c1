import Synchronization

/// Appends requests' closing `response_sent` spans off the answer's path, and owns that work:
/// the adapters hand a finished request over with ``record(_:status:)`` (it returns at once),
/// and ``run(_:)`` — one of the runtime's services — appends what has gathered, several requests
/// in one append. On shutdown (cancellation) it appends what is still queued before it returns,
/// so nothing runs after the runtime has stopped.
///
/// Best effort, as docs/api.md says: the request's own events are durable before it answers;
/// a failed append here loses only these spans.
public final class ResponseRecorder: Sendable {
    private let queue = Mutex<[(RequestTrace, Int)]>([])
    private let signal = WakeSignal()

    public init() {}

    /// Queues the closing span of a request answered with `status` (0 for an RPC that ended OK).
    public func record(_ request: RequestTrace, status: Int) {
        guard request.receivedSpan != nil else { return }
        queue.withLock { $0.append((request, status)) }
        signal.fire()
    }

    /// Requests queued and not yet appended.
    public var pending: Int { queue.withLock { $0.count } }

    /// Appends queued closing spans until cancelled, then appends what is left and returns.
    func run(_ context: CoreContext) async {
        while true {
            await signal.wait()
            let batch = queue.withLock { queue in
                defer { queue.removeAll(keepingCapacity: true) }
                return queue
            }
            if !batch.isEmpty { await context.recordResponses(batch) }
            if Task.isCancelled && queue.withLock({ $0.isEmpty }) { return }
        }
    }
}
