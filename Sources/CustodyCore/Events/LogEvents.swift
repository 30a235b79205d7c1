import CustodyLog

/// `log.loss`: records in the log itself that a repair accepted the loss of a range of the log
/// (docs/operations.md, "When the log has lost data"). Appended once for every range that
/// `quarantine.json` records, right after the repair, by ``CoreRuntime``.
public struct LogLoss: Sendable, Hashable {
    /// The seqs lost; none when `firstSeq > lastSeq` (damaged bytes between two whole batches).
    public var firstSeq: UInt64
    public var lastSeq: UInt64
    /// The segment the loss was found in, and where in it.
    public var segment: String
    public var offset: Int64
    /// Bytes moved out of the segment (0 when they were already gone).
    public var length: Int64
    /// The side file the damaged or cut bytes were moved into.
    public var sideFile: String?
    /// Why: what recovery found.
    public var reason: String
    /// When the repair recorded the loss (nanoseconds since the Unix epoch).
    public var recordedAt: Int64
    /// The hash chain's value after the last record before the lost range, so the chain can be
    /// followed up to the gap (absent in losses recorded before the chain).
    public var chainBefore: ChainValue?

    public init(
        firstSeq: UInt64,
        lastSeq: UInt64,
        segment: String,
        offset: Int64,
        length: Int64,
        sideFile: String?,
        reason: String,
        recordedAt: Int64,
        chainBefore: ChainValue? = nil
    ) {
        self.chainBefore = chainBefore
        self.firstSeq = firstSeq
        self.lastSeq = lastSeq
        self.segment = segment
        self.offset = offset
        self.length = length
        self.sideFile = sideFile
        self.reason = reason
        self.recordedAt = recordedAt
    }
}

/// `log.retention`: records in the log that retention deleted a range of it (docs/operations.md,
/// "Retention"). Appended by the retention pass after the snapshot of the state as of
/// `lastSeq` is durable and before any segment is deleted; the state the deleted events built
/// is in that snapshot, and the chain goes on from `chain`.
public struct LogRetention: Sendable, Hashable {
    /// The seqs deleted: everything from `firstSeq` (the log's first seq before) to `lastSeq`.
    public var firstSeq: UInt64
    public var lastSeq: UInt64
    /// The hash chain's value after `lastSeq`: where verification of what is left starts.
    public var chain: ChainValue
    /// The snapshot holding the state projections as of `lastSeq` (its file name in
    /// `snapshots/`).
    public var snapshot: String
    /// The bytes of log deleted.
    public var bytes: Int64
    /// When the pass decided it (nanoseconds since the Unix epoch).
    public var recordedAt: Int64

    public init(firstSeq: UInt64, lastSeq: UInt64, chain: ChainValue, snapshot: String, bytes: Int64, recordedAt: Int64) {
        self.firstSeq = firstSeq
        self.lastSeq = lastSeq
        self.chain = chain
        self.snapshot = snapshot
        self.bytes = bytes
        self.recordedAt = recordedAt
    }

    /// The event's body in the API.
    public var jsonValue: JSONValue {
        .object([
            "first_seq": .integer(Int64(bitPattern: firstSeq)), "last_seq": .integer(Int64(bitPattern: lastSeq)),
            "chain": .string(chain.hex), "snapshot": .string(snapshot), "bytes": .integer(bytes),
            "recorded_at": .string(RFC3339.format(recordedAt)),
        ])
    }
}
