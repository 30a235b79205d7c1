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

/// An actor that follows the log up to a position and lets tasks wait for it (the projector, the
/// span cache). It wakes ``waiters`` as it advances; ``waitForPosition(_:timeout:)`` is the one
/// way to wait.
protocol PositionFollower: Actor {
    /// The last seq this follower holds.
    var followedPosition: UInt64 { get }
    var waiters: PositionWaiters { get set }
}

extension PositionFollower {
    /// Waits until the follower holds `seq`; false when `timeout` passed first.
    func waitForPosition(_ seq: UInt64, timeout: Duration) async -> Bool {
        if followedPosition >= seq { return true }
        let id = waiters.reserveID()
        let timer = Task {
            try? await Task.sleep(for: timeout)
            self.expireWaiter(id)
        }
        defer { timer.cancel() }
        do {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                if followedPosition >= seq {
                    continuation.resume()
                } else {
                    waiters.add(id: id, seq, continuation)
                }
            }
            return true
        } catch {
            return false
        }
    }

    func expireWaiter(_ id: Int) {
        waiters.expire(id)
    }
}
