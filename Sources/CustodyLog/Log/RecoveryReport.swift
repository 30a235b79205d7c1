/// What opening the log found and did. Logged at start-up and shown by `custody log inspect`
/// (and, in the server, `/api/admin/stats`).
public struct RecoveryReport: Sendable, Codable, Hashable {
    /// A torn tail cut from the last segment.
    public struct TailCut: Sendable, Codable, Hashable {
        public var segment: String
        /// Where the segment now ends.
        public var offset: Int64
        public var bytesCut: Int64
        /// The defect found at `offset`.
        public var defect: String
        /// Seqs of whole batches that were cut with the tail (written, never acknowledged).
        public var droppedSeqs: [ClosedRange<UInt64>]
        /// Whether the cut reached below the last recovery point: bytes that had been
        /// acknowledged were missing (the file was shortened or damaged after it was written).
        public var reachedAcknowledgedData: Bool
    }

    public var tailCuts: [TailCut] = []
    /// Segments whose index files were missing or stale and were rebuilt.
    public var indexesRebuilt: [String] = []
    /// Damaged ranges moved into side files by a repair.
    public var quarantined: [QuarantineRecord] = []
    /// Leftover files removed (unfinished temporary files, empty segments).
    public var removedFiles: [String] = []
    /// Bytes whose checksums were verified while opening.
    public var bytesVerified: Int64 = 0
    /// Bytes walked by header only (before the recovery point).
    public var bytesWalked: Int64 = 0
    public var segments = 0
    /// The seq after the last record when the log opened.
    public var endSeq: UInt64 = 1
    public var durationSeconds: Double = 0

    /// A report of an open that found nothing to repair (an engine without files starts here).
    public init() {}

    /// Whether the log was not exactly as it had been left.
    public var foundDamage: Bool { !tailCuts.isEmpty || !quarantined.isEmpty }
}

/// A range that a repair moved out of a segment, recorded in `quarantine.json`.
public struct QuarantineRecord: Sendable, Codable, Hashable {
    public var segment: String
    public var offset: Int64
    public var length: Int64
    /// The side file holding the bytes (nil when nothing was left to keep, e.g. a missing segment).
    public var sideFile: String?
    /// The seqs lost; none when `firstLostSeq > lastLostSeq`.
    public var firstLostSeq: UInt64
    public var lastLostSeq: UInt64
    public var defect: String
    /// When the repair recorded it (nanoseconds since the Unix epoch; nil in records written
    /// before this was kept).
    public var recordedAt: Int64?

    public init(
        segment: String,
        offset: Int64,
        length: Int64,
        sideFile: String?,
        firstLostSeq: UInt64,
        lastLostSeq: UInt64,
        defect: String,
        recordedAt: Int64? = SegmentLog.now()
    ) {
        self.segment = segment
        self.offset = offset
        self.length = length
        self.sideFile = sideFile
        self.firstLostSeq = firstLostSeq
        self.lastLostSeq = lastLostSeq
        self.defect = defect
        self.recordedAt = recordedAt
    }

    /// Whether any seq was lost (a damaged range between two whole batches may hold none).
    public var lostSeqs: ClosedRange<UInt64>? { firstLostSeq <= lastLostSeq ? firstLostSeq...lastLostSeq : nil }
}

/// A seq that something outside the log knows was acknowledged — for example the last event a
/// projection applied. Opening the log (and `verify`) treat a log that ends before it as having
/// lost acknowledged records, exactly as when it ends before its own recovery point.
public struct AcknowledgedMark: Sendable, Hashable {
    /// The highest seq known to have been acknowledged.
    public var seq: UInt64
    /// Who knows it, for messages: "the projections' checkpoint".
    public var witness: String

    public init(seq: UInt64, witness: String) {
        self.seq = seq
        self.witness = witness
    }
}
