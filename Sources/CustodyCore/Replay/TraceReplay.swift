import CustodyLog

/// TraceReplay (docs/api.md "Replay", docs/log-format.md "Replay"): a past trace re-read from the log and
/// re-emitted under a new trace id. The HTTP route, the CLI (through the route) and the RPC method
/// all call ``replayTrace(_:mode:speed:request:)``.
///
/// Guarantees:
/// - The original trace is only read: every event a replay appends belongs to the new trace (or to
///   the request's own trace: `request_received`, `processing`), plus the `replay.started` and
///   `replay.completed` events of the `replays` projection.
/// - The first event (`replay_start`, with `replay.started`) is appended before the original is
///   looked up, so a replay starts emitting at once (docs/benchmarks.md P6); an unknown trace then gets
///   `replay_abort` and the replay ends `aborted` with `trace_not_found`.
/// - The original's spans are found through the projections — the trace's number (from
///   `RecentTraces` or `trace_keys`), its seqs from `trace_spans` — and read from the log by seq:
///   never a scan of the log.
/// - Every replay is independent: concurrent replays of one trace, and replays of replays, each
///   get their own new trace.
public struct TraceReplay: Sendable {
    /// `speed` above this is refused (a replay that fast is as fast as possible anyway).
    public static let maximumSpeed = 1_000.0
    /// Events are appended in groups of at most this many while nothing makes the replay wait.
    static let groupSize = 512
    /// The operation of the replay's own spans.
    static let operation = "TraceReplay.replayTrace"

    let context: CoreContext
    let traces: TraceQueries
    let workers: (any ReplayWorkers)?

    public init(context: CoreContext, traces: TraceQueries, workers: (any ReplayWorkers)?) {
        self.context = context
        self.traces = traces
        self.workers = workers
    }

    /// What a replay did (docs/api.md's answer, plus `errors` and `speed`).
    public struct Result: Sendable, Hashable {
        public var newTrace: String
        public var fromTrace: String
        public var mode: ReplayMode
        public var speed: Double
        /// Original spans replayed.
        public var spans: Int
        /// `replay_error` spans recorded (live mode: workers that failed or did not answer).
        public var errors: Int
        /// Live mode: by source, the spans that were not acted out because no worker of that
        /// source is configured (Custody's own `orchestrator` spans are never dispatched and not
        /// counted). Empty in a dry run, and in a live replay that dispatched every span.
        public var undispatched: [String: Int]
        public var durationMs: Double
        /// `completed` or `aborted`.
        public var status: ReplayStatus

        public var jsonValue: JSONValue {
            .object([
                "new_trace": .string(newTrace), "from_trace": .string(fromTrace), "mode": .string(mode.rawValue), "speed": .number(speed),
                "spans": .integer(Int64(spans)), "errors": .integer(Int64(errors)), "duration_ms": .number(durationMs),
                "status": .string(status.rawValue), "undispatched": .object(undispatched.mapValues { .integer(Int64($0)) }),
            ])
        }
    }

    /// Replays `traceId`: `replay_start`, then per original span (in timestamp order)
    /// `replay_span_start` and `replay_span_end` — with the original's source, operation, stage
    /// and seq — then `replay_complete`. `speed` 0 runs as fast as possible; otherwise the original
    /// pacing (span starts and ends) divided by `speed`. In `live` mode each span whose source is a
    /// configured worker is dispatched to it (`simulateOperation` under the new trace id) between
    /// its start and end; a failure or timeout is recorded as `replay_error` and the replay goes on.
    /// A span of any other source (but Custody's own) is not dispatched: its `replay_span_end`
    /// says `dispatched: false` and the result counts it in `undispatched`, so a partial live
    /// replay is never taken for a faithful one.
    /// Returns when the replay is complete; throws `trace_not_found` (after recording the abort)
    /// for an unknown trace.
    public func replayTrace(_ traceId: String, mode: ReplayMode, speed: Double = 0, request: RequestTrace) async throws(CoreError) -> Result {
        let fromTrace = try SpanInput.check(traceId, "trace_id", maximum: 128)
        guard speed.isFinite, speed >= 0, speed <= Self.maximumSpeed else {
            throw CoreError.invalidArgument("speed", "must be a number from 0 (as fast as possible) to \(Int(Self.maximumSpeed))")
        }
        let started = ContinuousClock.now
        let startedAt = context.now()
        var emitter = Emitter(context: context, request: request, newTrace: context.newIdentifier(), fromTrace: fromTrace)
        let replay = ReplayEvent(newTrace: emitter.newTrace, fromTrace: fromTrace, mode: mode, speed: speed, spans: 0, status: .running)
        emitter.pending = [
            .replayStarted(replay),
            .span(
                emitter.span(
                    stage: SpanStage.replayStart.rawValue,
                    operation: Self.operation,
                    timestamp: startedAt,
                    details: ["mode": .string(mode.rawValue), "speed": .number(speed)]
                )
            ),
        ]
        do {
            try await emitter.flush()
        } catch {
            emitter.appender.close()
            throw error
        }

        let original: [SpanRecord]
        do throws(CoreError) {
            let trace = try await traces.getTrace(fromTrace)
            if let retention = trace.retention {
                throw CoreError(
                    .beyondRetention,
                    "trace \(fromTrace) was partly deleted by retention (the log keeps seq \(retention.firstRetainedSeq) on): it cannot be replayed whole"
                )
            }
            original = trace.spans
        } catch {
            let status: ReplayStatus = error.code == .traceNotFound ? .aborted : .failed
            await emitter.finish(
                stage: SpanStage.replayAbort.rawValue,
                replay: replay,
                status: status,
                spans: 0,
                startedAt: startedAt,
                started: started,
                details: ["error": .string(error.message)]
            )
            throw error
        }

        var replayed = 0
        var errors = 0
        var undispatched: [String: Int] = [:]
        do {
            let clock = ContinuousClock()
            let origin = clock.now
            // When each original span started replaying: its replay timestamp and instant.
            var begun: [Int: (timestamp: Int64, instant: ContinuousClock.Instant)] = [:]
            var schedule = Schedule(original.map(\.span), speed: speed)
            while let step = schedule.next() {
                if let offset = step.offset {
                    let due = origin.advanced(by: .nanoseconds(offset))
                    if due > clock.now {
                        emitter.send()
                        try await clock.sleep(until: due)
                    }
                }
                let record = original[step.index]
                let span = record.span
                var details: [String: JSONValue] = ["original_seq": .integer(Int64(record.seq)), "original_stage": .string(span.stage)]
                switch step.kind {
                case .start:
                    let timestamp = context.now()
                    begun[step.index] = (timestamp, clock.now)
                    schedule.started(step.index, at: (clock.now - origin).nanoseconds)
                    if let spanId = span.spanId { details["original_span_id"] = .string(spanId) }
                    emitter.pending.append(
                        .span(emitter.span(stage: SpanStage.replaySpanStart.rawValue, like: span, timestamp: timestamp, details: details))
                    )
                    if mode == .live, let workers, workers.serves(span.source) {
                        // The worker's sim_replay span must follow this replay_span_start.
                        try await emitter.flush()
                        let call = SimulationCall(
                            traceId: emitter.newTrace,
                            originalTrace: fromTrace,
                            operation: span.operation,
                            details: span.details
                        )
                        do {
                            _ = try await workers.simulate(call, on: span.source)
                        } catch is CancellationError {
                            throw CancellationError()
                        } catch {
                            errors += 1
                            details["error"] = .string("\(error)")
                            details["worker"] = .string(span.source)
                            emitter.pending.append(
                                .span(emitter.span(stage: SpanStage.replayError.rawValue, like: span, timestamp: context.now(), details: details))
                            )
                        }
                    }
                case .end:
                    let begin = begun[step.index] ?? (context.now(), clock.now)
                    if let duration = span.durationMs { details["original_duration_ms"] = .number(duration) }
                    if mode == .live && span.source != Span.orchestratorSource && !(workers?.serves(span.source) ?? false) {
                        details["dispatched"] = .bool(false)
                        undispatched[span.source, default: 0] += 1
                    }
                    emitter.pending.append(
                        .span(
                            emitter.span(
                                stage: SpanStage.replaySpanEnd.rawValue,
                                like: span,
                                timestamp: begin.timestamp,
                                durationMs: (clock.now - begin.instant).inMilliseconds,
                                details: details
                            )
                        )
                    )
                    replayed += 1
                }
                if emitter.pending.count >= Self.groupSize { emitter.send() }
            }
        } catch let error as CoreError {
            await emitter.finish(
                stage: SpanStage.replayAbort.rawValue,
                replay: replay,
                status: .failed,
                spans: replayed,
                startedAt: startedAt,
                started: started,
                details: ["error": .string(error.message)]
            )
            throw error
        } catch {
            // Cancelled (the server is stopping).
            await emitter.finish(
                stage: SpanStage.replayAbort.rawValue,
                replay: replay,
                status: .aborted,
                spans: replayed,
                startedAt: startedAt,
                started: started,
                details: ["error": .string("the replay was cancelled")]
            )
            throw CoreError(.storageUnavailable, "the replay was cancelled: the server is stopping")
        }
        let finished = await emitter.finish(
            stage: SpanStage.replayComplete.rawValue,
            replay: replay,
            status: .completed,
            spans: replayed,
            startedAt: startedAt,
            started: started,
            details: ["errors": .integer(Int64(errors)), "undispatched": .object(undispatched.mapValues { .integer(Int64($0)) })]
        )
        guard finished else { throw CoreError(.storageUnavailable, "the replay's completion could not be written") }
        return Result(
            newTrace: emitter.newTrace,
            fromTrace: fromTrace,
            mode: mode,
            speed: speed,
            spans: replayed,
            errors: errors,
            undispatched: undispatched,
            durationMs: (ContinuousClock.now - started).inMilliseconds,
            status: .completed
        )
    }

    /// One step of a replay: an original span starts or ends replaying.
    struct Step: Equatable {
        enum Kind { case start, end }
        var index: Int
        var kind: Kind
        /// Nanoseconds after the replay's start at which the step is due; nil: at once.
        var offset: Int64?
    }

    /// The order of a replay's steps. At speed 0: each span's start then its end, one span after
    /// the other. Otherwise each span starts at its original offset from the first span ÷ speed,
    /// and ends at its original end ÷ speed — but never sooner after its replayed start than its
    /// original duration ÷ speed, so a start that ran late does not shorten the span. Steps come
    /// in time order (ties in the order they were scheduled).
    struct Schedule {
        let spans: [Span]
        let speed: Double
        /// Pending steps in time order, from `head` on.
        private var steps: [Step] = []
        private var head = 0

        init(_ spans: [Span], speed: Double) {
            self.spans = spans
            self.speed = speed
            steps.reserveCapacity(spans.count * 2)
            if speed > 0 {
                for index in spans.indices { add(Step(index: index, kind: .start, offset: scaled(spans[index].timestamp))) }
            } else {
                for index in spans.indices {
                    add(Step(index: index, kind: .start, offset: nil))
                    add(Step(index: index, kind: .end, offset: nil))
                }
            }
        }

        /// Nanoseconds after the first span, ÷ speed.
        private func scaled(_ time: Int64) -> Int64 {
            let offset = (Double(time) - Double(spans.first?.timestamp ?? time)) / speed
            return Int64(min(max(offset, 0), 9e18))
        }

        private mutating func add(_ step: Step) {
            // After every pending step due no later (ties keep scheduling order).
            var low = head
            var high = steps.count
            let key = step.offset ?? 0
            while low < high {
                let middle = (low + high) / 2
                if (steps[middle].offset ?? 0) <= key { low = middle + 1 } else { high = middle }
            }
            steps.insert(step, at: low)
        }

        mutating func next() -> Step? {
            guard head < steps.count else { return nil }
            defer { head += 1 }
            return steps[head]
        }

        /// Span `index` started replaying `elapsed` nanoseconds after the replay's start: its end
        /// is scheduled (paced replays; at speed 0 it already is).
        mutating func started(_ index: Int, at elapsed: Int64) {
            guard speed > 0 else { return }
            let span = spans[index]
            let duration = Int64(min(max((Double(span.end) - Double(span.timestamp)) / speed, 0), 9e18))
            let (earliest, overflow) = elapsed.addingReportingOverflow(duration)
            add(Step(index: index, kind: .end, offset: max(scaled(span.end), overflow ? .max : earliest)))
        }
    }

    /// Appends a replay's events in order, in groups, without holding up the replay's pacing: a
    /// group goes to ``ReplayAppender`` whenever the replay is about to wait (for its pacing, or
    /// for a worker) and every ``TraceReplay/groupSize`` events, and is written while the replay
    /// goes on. A replay waits for what it sent (``drain()``) only before calling a worker (whose
    /// `sim_replay` must follow the span's start) and at its end (its answer means durable).
    struct Emitter {
        let context: CoreContext
        let request: RequestTrace
        let newTrace: String
        let fromTrace: String
        let appender: ReplayAppender
        var pending: [EventBody] = []

        init(context: CoreContext, request: RequestTrace, newTrace: String, fromTrace: String) {
            self.context = context
            self.request = request
            self.newTrace = newTrace
            self.fromTrace = fromTrace
            self.appender = ReplayAppender(context: context, request: request)
        }

        func span(
            stage: String,
            operation: String,
            source: String = Span.orchestratorSource,
            taskUUID: String? = nil,
            timestamp: Int64,
            durationMs: Double? = nil,
            details: [String: JSONValue]
        ) -> Span {
            var details = details
            details["from_trace"] = .string(fromTrace)
            return Span(
                traceId: newTrace,
                source: source,
                stage: stage,
                operation: operation,
                taskUUID: taskUUID,
                durationMs: durationMs,
                timestamp: timestamp,
                details: JSONValue.object(details).jsonText
            )
        }

        /// A replay span standing for `original`: its source, operation and task.
        func span(stage: String, like original: Span, timestamp: Int64, durationMs: Double? = nil, details: [String: JSONValue]) -> Span {
            span(
                stage: stage,
                operation: original.operation,
                source: original.source,
                taskUUID: original.taskUUID,
                timestamp: timestamp,
                durationMs: durationMs,
                details: details
            )
        }

        /// Hands what is pending to the appender (it is written in the background, in order).
        mutating func send() {
            guard !pending.isEmpty else { return }
            appender.send(pending)
            pending.removeAll(keepingCapacity: true)
        }

        /// Sends what is pending and waits until everything sent is durable; throws the first
        /// append that failed.
        mutating func flush() async throws(CoreError) {
            send()
            try await appender.drain()
        }

        /// Appends what is pending, the closing span (`replay_complete` or `replay_abort`),
        /// `replay.completed`, and the request's `processing` span, and waits until all of it is
        /// durable. Best effort after a failure (the closing events are then appended on their
        /// own): returns whether they were written.
        @discardableResult
        mutating func finish(
            stage: String,
            replay: ReplayEvent,
            status: ReplayStatus,
            spans: Int,
            startedAt: Int64,
            started: ContinuousClock.Instant,
            details: [String: JSONValue]
        ) async -> Bool {
            var completed = replay
            completed.status = status
            completed.spans = UInt32(clamping: spans)
            var details = details
            details["mode"] = .string(replay.mode.rawValue)
            details["spans"] = .integer(Int64(spans))
            details["status"] = .string(status.rawValue)
            let elapsed = (ContinuousClock.now - started).inMilliseconds
            let closing: [EventBody] = [
                .span(span(stage: stage, operation: TraceReplay.operation, timestamp: startedAt, durationMs: elapsed, details: details)),
                .replayCompleted(completed),
                .span(
                    Span.orchestrator(
                        stage: SpanStage.processing.rawValue,
                        operation: "replayTrace",
                        requestTraceId: request.traceId,
                        durationMs: elapsed,
                        timestamp: startedAt,
                        details: JSONValue.object(["new_trace": .string(newTrace), "status": .string(status.rawValue)]).jsonText
                    )
                ),
            ]
            pending.append(contentsOf: closing)
            defer { appender.close() }
            do {
                try await flush()
                return true
            } catch {
                // What was pending before is lost with the failed append; the record of the end
                // is tried once more on its own.
                return (try? await context.append(closing, request: request)) != nil
            }
        }
    }
}

/// Writes a replay's groups of events one after the other, in the order they were sent, on its
/// own task; after a failed append it writes nothing more and reports the failure at the next
/// ``drain()``.
final class ReplayAppender: Sendable {
    enum Item: Sendable {
        case events([EventBody])
        case barrier(CheckedContinuation<CoreError?, Never>)
    }

    private let input: AsyncStream<Item>.Continuation
    private let writer: Task<Void, Never>

    init(context: CoreContext, request: RequestTrace) {
        let (stream, input) = AsyncStream<Item>.makeStream()
        self.input = input
        writer = Task {
            var failure: CoreError?
            for await item in stream {
                switch item {
                case .events(let events):
                    guard failure == nil else { continue }
                    do throws(CoreError) {
                        _ = try await context.append(events, request: request)
                    } catch {
                        failure = error
                    }
                case .barrier(let waiter):
                    waiter.resume(returning: failure)
                }
            }
        }
    }

    func send(_ events: [EventBody]) {
        input.yield(.events(events))
    }

    /// Waits until every group sent before is written; throws the first failure.
    func drain() async throws(CoreError) {
        let failure = await withCheckedContinuation { input.yield(.barrier($0)) }
        if let failure { throw failure }
    }

    /// No more groups: the writer ends once it has written what it has.
    func close() {
        input.finish()
    }
}

extension TraceReplay {
    /// Closes the replays a previous process left `running`: a replay completes within its
    /// request, so one still running when a data directory is opened was cut short by a crash or
    /// a kill. Each gets `replay_abort` (in its trace) and `replay.completed` with status
    /// `aborted`, so the replays list does not show it running forever. Called by
    /// ``CoreRuntime/open(directory:configuration:logger:liveEncoding:)`` once the projections
    /// hold the whole log; returns how many were closed.
    static func closeInterrupted(log: any EventLog, store: any ProjectionStore) async throws -> Int {
        let running = try await store.runningReplays().map { replay in
            ReplayEvent(
                newTrace: replay.newTrace,
                fromTrace: replay.fromTrace,
                mode: replay.mode,
                speed: replay.speed,
                spans: UInt32(clamping: replay.spans),
                status: .aborted
            )
        }
        guard !running.isEmpty else { return 0 }
        let now = LogTime.now()
        var events: [EventBody] = []
        for replay in running {
            let newTrace = replay.newTrace
            let fromTrace = replay.fromTrace
            let details = JSONValue.object([
                "from_trace": .string(fromTrace), "status": .string(ReplayStatus.aborted.rawValue),
                "error": .string("the server stopped before the replay completed"),
            ])
            events.append(
                .span(
                    Span(
                        traceId: newTrace,
                        source: "orchestrator",
                        stage: SpanStage.replayAbort.rawValue,
                        operation: operation,
                        timestamp: now,
                        details: details.jsonText
                    )
                )
            )
            events.append(.replayCompleted(replay))
        }
        _ = try await log.append(events.map(EventCodec.encode))
        return running.count
    }
}
