import CustodyLog
import Logging
import Synchronization

/// Runs the GitHub operations that `github.requested` put in the log, one at a time, in the order
/// they were requested, and records how each ended (`github.succeeded` / `github.failed`, or
/// `github.attempt_failed` and a later attempt), with an `outbound_call` span per call to GitHub
/// in the trace of the request that asked for it.
///
/// Guarantees:
/// - Nothing is lost: an operation is pending from the moment its `github.requested` is durable
///   until its outcome is; the pending ones are loaded from the projection when the runtime
///   opens (which has applied the whole log by then), so a crash or a restart resumes them.
/// - Nothing is done twice: an operation whose outcome is recorded is never run again, and an
///   attempt after one whose outcome is unknown (no answer, a 5xx, a restart in the middle)
///   first checks GitHub's state (``GitHubAttempt``).
/// - One call to GitHub at a time (GitHub asks integrations not to make concurrent requests),
///   strictly in request order, so an operation that depends on an earlier one (a pull request
///   for a branch just written) runs after it. A rate limit pauses every operation until the time
///   GitHub gives.
public actor GitHubOutbox {
    let log: any EventLog
    let settings: GitHubSettings
    let logger: Logger
    let now: @Sendable () -> Int64
    /// The operations to run, in the order they were requested.
    private var queue: [GitHubPendingOperation]
    /// Until when GitHub asked for no more requests (nanoseconds since the Unix epoch).
    private var pausedUntil: Int64 = 0
    /// Who waits for an operation's outcome: resumed with the seq that recorded it, or nil when
    /// their time is up.
    private var waiters: [String: [Int: CheckedContinuation<UInt64?, Never>]] = [:]
    private var nextWaiter = 0
    /// The run loop, when it waits for an operation to be requested.
    private var idle: CheckedContinuation<Void, Never>?
    /// The number of pending operations, for the metrics (read without entering the actor).
    private nonisolated let depthGauge = Atomic<Int>(0)

    init(
        log: any EventLog,
        settings: GitHubSettings,
        pending: [GitHubPendingOperation],
        logger: Logger,
        now: @escaping @Sendable () -> Int64 = LogTime.now
    ) {
        self.log = log
        self.settings = settings
        self.logger = logger
        self.now = now
        // Whatever was pending when the last process stopped may have been half done.
        self.queue = pending.map { operation in
            var operation = operation
            operation.uncertain = true
            return operation
        }
        depthGauge.store(queue.count, ordering: .relaxed)
    }

    /// The operations waiting to run (the `/metrics` outbox depth).
    public nonisolated var depth: Int { depthGauge.load(ordering: .relaxed) }

    /// Adds an operation whose `github.requested` is durable.
    func enqueue(_ operation: GitHubPendingOperation) {
        guard !queue.contains(where: { $0.id == operation.id }) else { return }
        queue.append(operation)
        depthGauge.store(queue.count, ordering: .relaxed)
        idle?.resume()
        idle = nil
    }

    func isPending(_ id: String) -> Bool { queue.contains { $0.id == id } }

    /// Waits until operation `id` has finished, at most `timeout`. Returns the seq of the event
    /// that recorded its outcome; nil when it is still pending. An operation that is not pending
    /// here returns 0 at once (it finished before, or does not exist).
    func waitForOutcome(_ id: String, timeout: Duration) async -> UInt64? {
        guard isPending(id) else { return 0 }
        let token = nextWaiter
        nextWaiter += 1
        let timer = Task { [weak self] in
            try? await Task.sleep(for: timeout)
            await self?.resumeWaiter(id, token, with: nil)
        }
        defer { timer.cancel() }
        return await withCheckedContinuation { waiters[id, default: [:]][token] = $0 }
    }

    private func resumeWaiter(_ id: String, _ token: Int, with seq: UInt64?) {
        guard let continuation = waiters[id]?.removeValue(forKey: token) else { return }
        if waiters[id]?.isEmpty == true { waiters[id] = nil }
        continuation.resume(returning: seq)
    }

    /// Runs the operations until the task is cancelled. A call in flight when it is cancelled has
    /// an unknown outcome, which the next start resolves by checking GitHub first.
    public func run() async {
        while !Task.isCancelled {
            guard let head = queue.first else {
                await withTaskCancellationHandler {
                    await withCheckedContinuation { idle = $0 }
                } onCancel: {
                    Task { await self.wake() }
                }
                continue
            }
            let due = max(head.notBefore, pausedUntil)
            let wait = due - now()
            if wait > 0 {
                do { try await Task.sleep(for: .nanoseconds(wait)) } catch { return }
                continue
            }
            var attempt = GitHubAttempt(operation: head, transport: settings.transport, retry: settings.retry, now: now)
            let outcome = await attempt.run()
            if Task.isCancelled, case .retry = outcome { return }
            await record(outcome, of: head, spans: attempt.spans)
        }
    }

    private func wake() {
        idle?.resume()
        idle = nil
    }

    /// Appends the attempt's spans and its outcome in one append, then moves the queue on. When
    /// the append fails, the outcome is not on record: the operation stays first, marked
    /// uncertain, and is tried again (checking GitHub) a second later.
    private func record(_ outcome: GitHubAttemptOutcome, of operation: GitHubPendingOperation, spans: [Span]) async {
        let attempt = operation.attempts + 1
        var bodies: [EventBody] = spans.map { .span($0) }
        var next = operation
        var finished = true
        let summary: JSONValue
        switch outcome {
        case .succeeded(let result):
            bodies.append(
                .githubSucceeded(GitHubFinished(operationId: operation.id, kind: operation.kind, attempt: attempt, outcome: result.jsonText))
            )
            summary = .object(["status": .string("succeeded"), "result": result])
        case .failed(let error):
            bodies.append(.githubFailed(GitHubFinished(operationId: operation.id, kind: operation.kind, attempt: attempt, outcome: error.jsonText)))
            summary = .object(["status": .string("failed"), "error": error])
        case .retry(let error, let rateLimitedUntil, let uncertain):
            if attempt >= settings.retry.maximumAttempts {
                let final = error.merging(["retries_exhausted": .bool(true)])
                bodies.append(
                    .githubFailed(GitHubFinished(operationId: operation.id, kind: operation.kind, attempt: attempt, outcome: final.jsonText))
                )
                summary = .object(["status": .string("failed"), "error": final])
            } else {
                finished = false
                let retryAt = rateLimitedUntil ?? (now() + settings.retry.backoff(after: attempt).nanoseconds)
                if let rateLimitedUntil { pausedUntil = max(pausedUntil, rateLimitedUntil) }
                bodies.append(
                    .githubAttemptFailed(
                        GitHubAttemptFailed(
                            operationId: operation.id,
                            kind: operation.kind,
                            attempt: attempt,
                            retryAt: retryAt,
                            error: error.jsonText
                        )
                    )
                )
                // Not an error of the trace (no `error` member) until the retries are spent.
                summary = .object(["status": .string("retrying"), "retry_at": .string(RFC3339.format(retryAt)), "last_error": error])
                next.attempts = attempt
                next.notBefore = retryAt
                next.uncertain = operation.uncertain || uncertain
            }
        }
        let started = spans.first?.timestamp ?? now()
        let details = summary.merging(["operation_id": .string(operation.id), "attempt": .integer(Int64(attempt))])
        bodies.append(
            .span(
                Span.orchestrator(
                    stage: SpanStage.processing.rawValue,
                    operation: "github.\(operation.kind.rawValue)",
                    requestTraceId: operation.traceId,
                    durationMs: Double(max(now() - started, 0)) / 1e6,
                    timestamp: started,
                    details: details.jsonText
                )
            )
        )
        let receipt: AppendReceipt
        do {
            receipt = try await log.append(bodies.map(EventCodec.encode))
        } catch {
            logger.warning(
                "the outcome of a GitHub operation could not be recorded; it will be checked and tried again",
                metadata: ["operation": "\(operation.id)", "error": "\(error)"]
            )
            if let index = queue.firstIndex(where: { $0.id == operation.id }) {
                queue[index].uncertain = true
                queue[index].notBefore = now() + 1_000_000_000
            }
            return
        }
        guard let index = queue.firstIndex(where: { $0.id == operation.id }) else { return }
        if finished {
            queue.remove(at: index)
            depthGauge.store(queue.count, ordering: .relaxed)
            for (_, continuation) in waiters.removeValue(forKey: operation.id) ?? [:] {
                continuation.resume(returning: receipt.lastSeq)
            }
        } else {
            queue[index] = next
        }
    }
}
