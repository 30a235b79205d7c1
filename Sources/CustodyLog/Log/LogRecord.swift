import NIOCore

/// One record read from the log.
public struct LogRecord: Sendable, Hashable {
    /// The record's position: assigned at append, starting at 1, strictly increasing, no gaps
    /// (except a range lost to corruption and quarantined by a repair, which is reported).
    public var seq: UInt64
    /// When the record was appended, in nanoseconds since the Unix epoch (the log's clock, never
    /// decreasing along the log).
    public var timestamp: Int64
    public var payload: ByteBuffer

    public init(seq: UInt64, timestamp: Int64, payload: ByteBuffer) {
        self.seq = seq
        self.timestamp = timestamp
        self.payload = payload
    }
}

/// What an acknowledged append got: its seqs, durable under the log's fsync policy.
public struct AppendReceipt: Sendable, Hashable {
    public var firstSeq: UInt64
    public var lastSeq: UInt64
    /// The timestamp stored with every record of the append.
    public var timestamp: Int64
    /// The hash chain's value after the append's last record (nil when the log runs without the
    /// chain, ``LogConfiguration/hashChain``).
    public var chain: ChainValue?

    public init(firstSeq: UInt64, lastSeq: UInt64, timestamp: Int64, chain: ChainValue?) {
        self.firstSeq = firstSeq
        self.lastSeq = lastSeq
        self.timestamp = timestamp
        self.chain = chain
    }

    public var seqs: ClosedRange<UInt64> { firstSeq...lastSeq }
}
