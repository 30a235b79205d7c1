/// Tasks waiting for a follower of the log (the projector, the span cache) to reach a seq. The
/// follower, an actor, owns one and wakes the waiters as it advances; a waiter gives up after its
/// timeout with a clear error instead of waiting forever.
struct PositionWaiters {
    private var waiting: [Int: (seq: UInt64, continuation: CheckedContinuation<Void, any Error>)] = [:]
    private var nextID = 0

    /// An id for a waiter about to be added, so its timeout can be armed first.
    mutating func reserveID() -> Int {
        nextID += 1
        return nextID
    }

    /// Registers a waiter for `seq` under `id`.
    mutating func add(id: Int, _ seq: UInt64, _ continuation: CheckedContinuation<Void, any Error>) {
        waiting[id] = (seq, continuation)
    }

    /// Resumes every waiter whose seq is at or before `position`.
    mutating func wake(upTo position: UInt64) {
        for (id, waiter) in waiting where waiter.seq <= position {
            waiting.removeValue(forKey: id)
            waiter.continuation.resume()
        }
    }

    /// Fails a waiter that timed out (if it is still waiting).
    mutating func expire(_ id: Int) {
        waiting.removeValue(forKey: id)?.continuation.resume(throwing: CancellationError())
    }
}
