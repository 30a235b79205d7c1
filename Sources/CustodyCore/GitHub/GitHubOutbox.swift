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
/// - **One node at a time** (cluster mode): ``run()`` is called only while this node holds the
///   runtime's ``WorkLease``, and is cancelled before the lease can pass on. Each time it starts
///   it reads the pending operations again from the projections, once they hold everything any
///   node acknowledged before (``EventLog/synchronize()``), and treats them all as uncertain:
///   the node that held the lease before may have been in the middle of one. While it runs it
///   reads them again every ``refreshInterval`` (and whenever this node requests one), so an
///   operation requested on another node is picked up within about that long.
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
    /// Fired when this node requests an operation, to wake the run loop.
    private nonisolated let requested = WakeSignal()
    /// The pending operations as the projections hold them, once they have applied everything
    /// acknowledged (on any node) before the call.
    private let loadPending: @Sendable () async throws -> [GitHubPendingOperation]
    /// How often the run loop reads the pending operations again while it holds the lease.
    let refreshInterval: Duration
    /// Whether ``run()`` is running here (this node holds the lease).
    private var running = false
    /// The number of pending operations, for the metrics (read without entering the actor).
    private nonisolated let depthGauge = Atomic<Int>(0)

    init(
        log: any EventLog,
        settings: GitHubSettings,
        logger: Logger,
        refreshInterval: Duration = .seconds(1),
        now: @escaping @Sendable () -> Int64 = LogTime.now,
        loadPending: @escaping @Sendable () async throws -> [GitHubPendingOperation]
    ) {
        self.log = log
        self.settings = settings
        self.logger = logger
        self.refreshInterval = refreshInterval
        self.now = now
        self.loadPending = loadPending
        self.queue = []
    }

    /// The operations waiting to run (the `/metrics` outbox depth).
    public nonisolated var depth: Int { depthGauge.load(ordering: .relaxed) }

    /// Adds an operation whose `github.requested` this node made durable (when this node runs the
    /// outbox; else the node that does reads it from the log).
    func enqueue(_ operation: GitHubPendingOperation) {
        guard running else { return }
        insert(operation)
        requested.fire()
    }

    /// Puts `operation` in the queue in request order, unless it is there already.
    private func insert(_ operation: GitHubPendingOperation) {
        guard !queue.contains(where: { $0.id == operation.id }) else { return }
        let position = queue.lastIndex { $0.requestedSeq < operation.requestedSeq }.map { $0 + 1 } ?? 0
        // Never before the operation being run (the head), which `record` finds by id.
        queue.insert(operation, at: max(position, queue.isEmpty ? 0 : 1))
        depthGauge.store(queue.count, ordering: .relaxed)
    }

    func isPending(_ id: String) -> Bool { queue.contains { $0.id == id } }

    /// Waits until operation `id` has finished here, at most `timeout`. Returns the seq of the
    /// event that recorded its outcome; nil when it is still pending, or when this node does not
    /// run the outbox now (another node's outcome reaches the projections). An operation that is
    /// not pending here returns 0 at once (it finished before, or does not exist).
    func waitForOutcome(_ id: String, timeout: Duration) async -> UInt64? {
        guard running else { return nil }
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

    /// Runs the operations until the task is cancelled (in cluster mode: until this node's lease
    /// ends). A call in flight when it is cancelled has an unknown outcome, which the next start —
    /// here or on another node — resolves by checking GitHub first.
    public func run() async {
        running = true
        defer {
            running = false
            queue = []
            depthGauge.store(0, ordering: .relaxed)
            for (_, waiting) in waiters { for continuation in waiting.values { continuation.resume(returning: nil) } }
            waiters = [:]
        }
        // Whatever is pending may have been half done: by the last process, or the node that
        // held the lease before.
        while !Task.isCancelled {
            if await refresh(uncertain: true) { break }
            try? await Task.sleep(for: .seconds(1))
        }
        if queue.count > 0 {
            logger.notice("GitHub operations left pending resume", metadata: ["operations": "\(queue.count)"])
        }
        var refreshed = ContinuousClock.now
        while !Task.isCancelled {
            if ContinuousClock.now - refreshed >= refreshInterval {
                // Operations requested on other nodes; this node holds the lease, so none of
                // them has been tried by anyone else since it was loaded.
                _ = await refresh(uncertain: false)
                refreshed = ContinuousClock.now
            }
            guard let head = queue.first else {
                await wakeOrTimeout(after: refreshInterval)
                continue
            }
            let due = max(head.notBefore, pausedUntil)
            let wait = due - now()
            if wait > 0 {
                do { try await Task.sleep(for: .nanoseconds(min(wait, refreshInterval.nanoseconds))) } catch { return }
                continue
            }
            var attempt = GitHubAttempt(operation: head, transport: settings.transport, retry: settings.retry, now: now)
            let outcome = await attempt.run()
            if Task.isCancelled, case .retry = outcome { return }
            await record(outcome, of: head, spans: attempt.spans)
        }
    }

    /// Returns when this node requests an operation, after `interval`, or when cancelled.
    private func wakeOrTimeout(after interval: Duration) async {
        let requested = requested
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await requested.wait() }
            group.addTask { try? await Task.sleep(for: interval) }
            await group.next()
            group.cancelAll()
        }
    }

    /// Reads the pending operations from the projections and queues those not queued yet (marked
    /// uncertain when `uncertain`, or when they were tried before); whether it could.
    private func refresh(uncertain: Bool) async -> Bool {
        let pending: [GitHubPendingOperation]
        do {
            pending = try await loadPending()
        } catch {
            logger.warning("could not read the pending GitHub operations; trying again", metadata: ["error": "\(error)"])
            return false
        }
        for var operation in pending where !queue.contains(where: { $0.id == operation.id }) {
            operation.uncertain = uncertain || operation.attempts > 0
            insert(operation)
        }
        return true
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
