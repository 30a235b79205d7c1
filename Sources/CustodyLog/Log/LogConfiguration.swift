/// When an append counts as durable.
public enum FsyncPolicy: Sendable, Hashable, CustomStringConvertible {
    /// Acknowledge after the `fdatasync` that covers the append (the default). Concurrent appends
    /// share one write and one fsync (group commit).
    case always
    /// Acknowledge after the write; fsync at most every `milliseconds`.
    case interval(milliseconds: Int)
    /// Acknowledge after the write; the operating system decides when data reaches the disk.
    /// For benchmarks only.
    case never

    /// Parses `always`, `never` or `interval=MS`.
    public init?(_ text: String) {
        switch text {
        case "always": self = .always
        case "never": self = .never
        default:
            guard text.hasPrefix("interval="), let ms = Int(text.dropFirst("interval=".count)), ms > 0 else { return nil }
            self = .interval(milliseconds: ms)
        }
    }

    public var description: String {
        switch self {
        case .always: "always"
        case .never: "never"
        case .interval(let ms): "interval=\(ms)"
        }
    }

    /// Whether appends are acknowledged before their fsync.
    var acknowledgesBeforeSync: Bool { self != .always }
}

/// How a ``SegmentLog`` writes.
public struct LogConfiguration: Sendable {
    public var fsync: FsyncPolicy
    /// A segment is sealed and a new one started once it holds this many bytes.
    public var segmentBytes: Int64
    /// A segment is also sealed once it is this old (nil: no age limit).
    public var segmentAge: Duration?
    /// The sparse index gets an entry at least every this many bytes of segment.
    public var indexIntervalBytes: Int64
    /// Appends are cut into batches of about this many uncompressed bytes (at most 32 MiB: a
    /// batch, with the record that tops it up, must stay under the 64 MiB a reader accepts).
    public var batchBytes: Int
    /// Bytes waiting for the next group commit beyond which appends are refused (overloaded),
    /// so that a stalled disk cannot make memory grow without bound.
    public var maximumPendingBytes: Int
    /// A recovery point is saved after this many bytes have been written since the last one, so
    /// opening the log checksums at most about this much of the last segment.
    public var recoveryPointIntervalBytes: Int64
    /// Called with how long each fdatasync of appended data took (a latency histogram's feed).
    /// It runs on the log's actor after the sync: keep it short, and never call the log from it.
    public var onSynchronization: (@Sendable (Duration) -> Void)?
    /// The clock of the log's timers: when an interval fsync is due, a segment's age.
    public var clock: any LogClock
    /// The wall clock that stamps records appended without a timestamp (nanoseconds since the
    /// Unix epoch; tests pass one that moves as they say).
    public var wallClock: @Sendable () -> Int64 = LogTime.now
    /// Whether batches carry the hash chain (format version 2; docs/log-format.md). On by
    /// default; off only to measure what the chain costs (P13): a log written with it off and
    /// then on starts its chain at the first chained batch, and one written on and then off
    /// fails `verify` (a chain that stops is what a rewrite looks like).
    public var hashChain = true
    /// Whether segments get an LZ4 dictionary of the log's recent data, against which their
    /// batches are compressed (codec 2; docs/log-format.md, "Segment dictionaries"). On by
    /// default; a log written with it on is read whatever this says.
    public var compressionDictionary = true
    /// How many bytes of recent records make a segment's dictionary (at most 64 KiB, what LZ4
    /// looks back; tests make it small so that short runs cross the dictionary's creation).
    public var dictionaryBytes = LZ4Dictionary.maximumBytes
    /// While the log writes less than this many bytes of records per second, a group of at most
    /// 64 KiB is compressed against its segment's dictionary with LZ4HC instead of LZ4 (the same
    /// codec 2 on disk): a few tens of µs of CPU per small batch, which a quiet log has, for about
    /// 15% less space (docs/benchmarks.md P8). 0 never does.
    public var highCompressionBelowBytesPerSecond: Int64 = 1 << 20

    public init(
        fsync: FsyncPolicy = .always,
        segmentBytes: Int64 = 64 << 20,
        segmentAge: Duration? = nil,
        indexIntervalBytes: Int64 = 4096,
        batchBytes: Int = 64 << 10,
        maximumPendingBytes: Int = 256 << 20,
        recoveryPointIntervalBytes: Int64 = 16 << 20,
        clock: any LogClock = SystemLogClock()
    ) {
        self.clock = clock
        self.fsync = fsync
        self.segmentBytes = segmentBytes
        self.segmentAge = segmentAge
        self.indexIntervalBytes = indexIntervalBytes
        self.batchBytes = batchBytes
        self.maximumPendingBytes = maximumPendingBytes
        self.recoveryPointIntervalBytes = recoveryPointIntervalBytes
    }
}

extension LogConfiguration {
    /// ``batchBytes`` within what a batch may hold: a batch closes once it reaches this size, so it
    /// can grow by one more record (16 MiB at most) and must stay under 64 MiB.
    var effectiveBatchBytes: Int { max(1, min(batchBytes, 32 << 20)) }
}

/// What opening the log may do about damage it finds.
public enum DamagePolicy: Sendable {
    /// Refuse to open when anything before the tail is damaged (a torn tail is always cut).
    case refuse
    /// Move each damaged range into a side file next to its segment, record the lost seqs in
    /// `quarantine.json`, and open.
    case quarantine
}
