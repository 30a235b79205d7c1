import CustodyLog

/// What retention has deleted, as the projections know it from the `log.retention` events they
/// applied (docs/operations.md, "Retention").
public struct RetentionRecord: Sendable, Hashable {
    /// The newest `log.retention` event and its seq.
    public var latest: LogRetention
    public var recordSeq: UInt64
    /// Over every pass: the events (seqs) and bytes deleted, and how many passes deleted anything.
    public var deletedEvents: UInt64
    public var deletedBytes: Int64
    public var passes: Int

    public init(latest: LogRetention, recordSeq: UInt64, deletedEvents: UInt64, deletedBytes: Int64, passes: Int) {
        self.latest = latest
        self.recordSeq = recordSeq
        self.deletedEvents = deletedEvents
        self.deletedBytes = deletedBytes
        self.passes = passes
    }

    /// The first seq the log keeps: the state before it is in the snapshot.
    public var firstRetainedSeq: UInt64 { latest.lastSeq + 1 }
}

/// A trace retention deleted part of: its spans before ``firstRetainedSeq`` are gone.
public struct TraceRetention: Sendable, Hashable {
    public var firstRetainedSeq: UInt64

    public init(firstRetainedSeq: UInt64) {
        self.firstRetainedSeq = firstRetainedSeq
    }

    /// docs/api.md's `retention` object of a trace.
    public var jsonValue: JSONValue {
        .object([
            "partial": .bool(true), "first_seq": .integer(Int64(firstRetainedSeq)),
            "note": .string("spans of this trace before seq \(firstRetainedSeq) were deleted by retention"),
        ])
    }
}
