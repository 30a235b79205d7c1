import CustodyLog

/// The projections: state and indexes derived from the log, queried by the operations as typed
/// records. The seam a projection engine plugs into: ``SQLiteProjectionStore`` (one file per
/// data directory) implements it; a shared store (PostgreSQL, docs/architecture.md "The two
/// seams") implements the same requirements. Nothing outside an implementation sees its
/// database: no SQL, no rows.
///
/// Rules every implementation keeps:
/// - **One writer, whole batches.** Only ``apply(_:)`` writes projected rows, and it writes a
///   batch and moves the checkpoint to the batch's ``ProjectionBatch/checkpointSeq`` in one
///   transaction: after any crash the store holds exactly the events up to its checkpoint, each
///   applied once. Batches come in seq order, each after the checkpoint.
/// - **Reads see committed batches only**, each read one consistent snapshot: a read never sees
///   half a batch, and a read that returns several things (``orderActivity(orderId:)``) takes
///   them from the same snapshot.
/// - **Rebuildable.** Everything can be thrown away and rebuilt from the log. A rebuild target
///   (``makeRebuildTarget()``) is a fresh, empty store written without per-transaction
///   durability; ``replaceContents(with:)`` swaps its contents in atomically (readers see the old
///   rows or the new ones, never a mix) and keeps serving reads meanwhile.
/// - **The same answers.** Two stores that applied the same log answer every read the same,
///   whatever the batching (docs/projections.md lists what each table holds).
public protocol ProjectionStore: Sendable {
    /// The engine's name as `/api/admin/stats` and the metrics show it: `sqlite`, `postgresql`.
    var engine: String { get }

    // MARK: Writing

    /// The checkpoint: the seq of the last applied record (0 when none).
    func appliedSeq() async throws -> UInt64

    /// Whether this node may apply batches now. A store of one node always may (the default); a
    /// store shared by several nodes lets one at a time, and the projector of a node that may
    /// not follows the checkpoint the writing node moves instead (``Projector``).
    func mayApply() async throws -> Bool

    /// Applies `batch` and moves the checkpoint, in one transaction.
    func apply(_ batch: ProjectionBatch) async throws

    /// The losses (`log.loss` events) applied so far.
    func recordedLosses() async throws -> Set<LossKey>

    /// A fresh, empty store beside this one for a rebuild, ready for a bulk load.
    func makeRebuildTarget() async throws -> any ProjectionStore

    /// Ends the bulk load of a rebuild target: indexes built, contents durable. It can still
    /// take batches (the last ones before a swap).
    func finishRebuild() async throws

    /// Replaces every projection, the checkpoint included, with the contents of `rebuilt` (a
    /// target of ``makeRebuildTarget()`` after ``finishRebuild()``), atomically, and closes and
    /// removes `rebuilt`. Returns the new checkpoint.
    func replaceContents(with rebuilt: any ProjectionStore) async throws -> UInt64

    /// Makes everything durable and releases the store (a rebuild target is also removed).
    func close() async throws

    /// Writes a consistent copy of the projections, as committed now, to a new database file at
    /// `path` (while they go on being written), and returns the seq the copy has applied.
    func backup(to path: String) async throws -> UInt64

    // MARK: Retention (docs/operations.md, "Retention")

    /// What retention deleted, from the `log.retention` events applied; nil when nothing.
    func retention() async throws -> RetentionRecord?

    /// Whether a trace had spans in a range retention deleted.
    func isRetired(traceId: String) async throws -> Bool

    /// Removes the span projections of every seq up to `seq` (which the store has applied) —
    /// `operation_logs` rows, traces wholly in the range — and takes the retired traces of the
    /// snapshot at `snapshotAt`. Repeatable: a second call finds nothing more to remove.
    func pruneSpans(through seq: UInt64, snapshotAt snapshotPath: String) async throws -> SpanPruning

    /// Takes the state of the snapshot at `snapshotPath` (``StateSnapshots``) into this empty
    /// rebuild target and moves its checkpoint to the snapshot's, which it returns.
    func loadSnapshot(at snapshotPath: String) async throws -> UInt64

    // MARK: Tasks and orders

    /// The task with this uuid.
    func task(uuid: String) async throws -> TaskRecord?

    /// Tasks created after `afterCreatedSeq`, of an order and/or status when given, by
    /// `created_seq`, at most `limit`.
    func tasks(orderId: String?, status: TaskStatus?, afterCreatedSeq: UInt64, limit: Int) async throws -> [TaskRecord]

    /// An order's follow-ups with seq up to `throughSeq`, in submission order.
    func followups(orderId: String, throughSeq: UInt64) async throws -> [FollowupRecord]

    /// Everything a delivery report of the order needs, from one snapshot.
    func orderActivity(orderId: String) async throws -> OrderActivity

    /// The latest revision of the order's delivery report (its JSON), nil when none.
    func latestReport(orderId: String) async throws -> JSONText?

    // MARK: Traces and replays

    /// A trace's span seqs (in `trace_spans` order) and its summary; nil for an unknown trace.
    func trace(_ traceId: String) async throws -> TraceLocation?

    /// The span seqs and summaries of several traces, by trace id (unknown ones left out): one
    /// read of a consistent state where the engine can (the default asks ``trace(_:)`` for each).
    func traces(_ traceIds: [String]) async throws -> [String: TraceLocation]

    /// Summaries of the traces matching `search` (its cursor already parsed as `after`), newest
    /// first by (start, trace id), at most `limit`. `search.limit` and `search.cursor` are
    /// ignored here.
    func searchTraces(_ search: TraceSearch, after: TraceCursor?, limit: Int) async throws -> [TraceSummaryRecord]

    /// The newest replays first, at most `limit`.
    func replays(limit: Int) async throws -> [ReplayRecord]

    /// The custody graph's rows from minute `first` through minute `last` (minutes since the
    /// epoch, ``GraphProjection/minute(ofTimestamp:)``), summed per node and edge.
    func graph(fromMinute first: Int64, throughMinute last: Int64) async throws -> GraphProjection.Window

    /// Replays recorded as started and not completed, oldest first.
    func runningReplays() async throws -> [ReplayRecord]

    // MARK: GitHub operations

    /// The GitHub operation with this id.
    func githubOperation(id: String) async throws -> GitHubOperationRecord?

    /// The first GitHub operation requested with this idempotency key.
    func githubOperation(idempotencyKey: String) async throws -> GitHubOperationRecord?

    /// The latest GitHub operations, newest first, of one status when given.
    func githubOperations(status: GitHubOperationRecord.Status?, limit: Int) async throws -> [GitHubOperationRecord]

    /// The pending GitHub operations, in request order: what the outbox resumes.
    func pendingGitHubOperations() async throws -> [GitHubPendingOperation]

    // MARK: Signed checkpoints of the log

    /// The newest `log.checkpoint` applied.
    func latestLogCheckpoint() async throws -> StoredLogCheckpoint?

    /// `log.checkpoint`s attesting seqs at or after `fromSeq`, oldest first, at most `limit`.
    func logCheckpoints(fromSeq: UInt64, limit: Int) async throws -> [StoredLogCheckpoint]

    /// The first `log.checkpoint` attesting a seq at or after `seq`: the one a proof of `seq` ends at.
    func logCheckpoint(covering seq: UInt64) async throws -> StoredLogCheckpoint?
}

extension ProjectionStore {
    public func mayApply() async throws -> Bool { true }

    public func traces(_ traceIds: [String]) async throws -> [String: TraceLocation] {
        var found: [String: TraceLocation] = [:]
        for traceId in traceIds where found[traceId] == nil {
            if let location = try await trace(traceId) { found[traceId] = location }
        }
        return found
    }
}

/// Where a trace's spans are: their seqs in the log and the trace's summary.
public struct TraceLocation: Sendable, Hashable {
    public var seqs: [UInt64]
    public var summary: TraceSummaryRecord

    public init(seqs: [UInt64], summary: TraceSummaryRecord) {
        self.seqs = seqs
        self.summary = summary
    }
}

/// Where a page of trace search results continues: after the trace with this start and id.
public struct TraceCursor: Sendable, Hashable {
    public var start: Int64
    public var traceId: String

    public init(start: Int64, traceId: String) {
        self.start = start
        self.traceId = traceId
    }
}

/// One replay (a `replays` row).
public struct ReplayRecord: Sendable, Hashable {
    public var newTrace: String
    public var fromTrace: String
    public var mode: ReplayMode
    public var speed: Double
    public var status: ReplayStatus
    public var spans: Int64
    public var startedAt: Int64
    public var completedAt: Int64?

    public init(
        newTrace: String,
        fromTrace: String,
        mode: ReplayMode,
        speed: Double,
        status: ReplayStatus,
        spans: Int64,
        startedAt: Int64,
        completedAt: Int64?
    ) {
        self.newTrace = newTrace
        self.fromTrace = fromTrace
        self.mode = mode
        self.speed = speed
        self.status = status
        self.spans = spans
        self.startedAt = startedAt
        self.completedAt = completedAt
    }

    /// docs/api.md's replay entry.
    public var jsonValue: JSONValue {
        .object([
            "started_at": .string(RFC3339.format(startedAt)), "from_trace": .string(fromTrace), "new_trace": .string(newTrace),
            "mode": .string(mode.rawValue), "speed": .number(speed), "status": .string(status.rawValue), "spans": .integer(spans),
            "duration_ms": completedAt.map { .number(Double($0 - startedAt) / 1_000_000) } ?? .null,
        ])
    }
}

/// Everything about an order that a delivery report needs, read from one snapshot.
public struct OrderActivity: Sendable {
    public struct Counts: Sendable, Hashable {
        public var count: Int = 0
        /// Of spans: how many traces and error spans.
        public var traces: Int = 0
        public var errors: Int = 0
        public var lastSeq: Int64?
        public var firstAt: Int64?
        public var lastAt: Int64?

        public init() {}
    }

    /// The order's tasks by `created_seq`.
    public var tasks: [TaskRecord] = []
    /// The order's follow-ups by seq.
    public var followups: [FollowupRecord] = []
    /// Its factory errors.
    public var errors = Counts()
    /// The spans of its tasks.
    public var spans = Counts()
    /// The latest report: revision and JSON.
    /// The order's latest report: its revision, its JSON and the seq of its
    /// `delivery.finalized` event.
    public var latestReport: (revision: Int64, report: JSONText, seq: Int64)?

    public init() {}
}

/// What identifies one recorded loss: a range of `quarantine.json` and its `log.loss` event.
public struct LossKey: Sendable, Hashable {
    public var firstSeq: UInt64
    public var lastSeq: UInt64
    public var segment: String
    public var offset: Int64

    public init(firstSeq: UInt64, lastSeq: UInt64, segment: String, offset: Int64) {
        self.firstSeq = firstSeq
        self.lastSeq = lastSeq
        self.segment = segment
        self.offset = offset
    }
}

/// A `log.checkpoint` event as the projections hold it: the checkpoint and the seq of its record.
public struct StoredLogCheckpoint: Sendable, Hashable {
    public var checkpoint: LogCheckpoint
    public var recordSeq: UInt64

    public init(checkpoint: LogCheckpoint, recordSeq: UInt64) {
        self.checkpoint = checkpoint
        self.recordSeq = recordSeq
    }

    public var jsonValue: JSONValue { checkpoint.jsonValue(recordSeq: recordSeq) }
}
