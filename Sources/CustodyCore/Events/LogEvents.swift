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
