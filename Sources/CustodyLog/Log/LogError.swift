/// An error from the log. Compare ``code`` to tell the kinds apart; ``message`` says what
/// happened in one sentence; ``damage`` lists damaged ranges for ``Code/corruption``.
public struct LogError: Error, CustomStringConvertible, Sendable {
    /// The kind of a ``LogError``.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Wrapped: Hashable, Sendable {
            case storageUnavailable
            case corruption
            case closed
            case invalidArgument
            case directoryLocked
            case overloaded
            case dataLoss
            case fenced
        }

        private let wrapped: Wrapped
        private init(_ wrapped: Wrapped) { self.wrapped = wrapped }

        /// The log cannot be written (disk full, a failed write or fsync). Appends fail until a new
        /// segment can be written; nothing was acknowledged that is not durable.
        public static let storageUnavailable = Code(.storageUnavailable)
        /// Durable data is damaged before the tail; see ``LogError/damage``.
        public static let corruption = Code(.corruption)
        /// The log has been closed.
        public static let closed = Code(.closed)
        /// An argument is out of range (an empty append, a record over the size limit).
        public static let invalidArgument = Code(.invalidArgument)
        /// Another process has the data directory open.
        public static let directoryLocked = Code(.directoryLocked)
        /// Too many bytes are waiting to be written; try again later.
        public static let overloaded = Code(.overloaded)
        /// The log ends before records that are known to have been acknowledged (a cut into
        /// durable data, not a torn tail): opening refuses unless told to record the loss.
        public static let dataLoss = Code(.dataLoss)
        /// An append's ``AppendFence`` did not hold: another append was made under its key since
        /// the one the caller expected. Nothing was appended; read the key's state again and retry.
        public static let fenced = Code(.fenced)

        public var description: String {
            switch wrapped {
            case .storageUnavailable: "storage unavailable"
            case .corruption: "corruption"
            case .closed: "closed"
            case .invalidArgument: "invalid argument"
            case .directoryLocked: "directory locked"
            case .overloaded: "overloaded"
            case .dataLoss: "data loss"
            case .fenced: "fenced"
            }
        }
    }

    public var code: Code
    public var message: String
    public var damage: [LogDamage]
    /// The file-system error behind a ``Code/storageUnavailable``.
    public var underlying: (any Error)?

    public init(_ code: Code, _ message: String, damage: [LogDamage] = [], underlying: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.damage = damage
        self.underlying = underlying
    }

    public var description: String { message }

    public static func storageUnavailable(_ what: String, _ error: any Error) -> LogError {
        LogError(.storageUnavailable, "\(what): \(error)", underlying: error)
    }
}

/// A damaged range of a segment file.
public struct LogDamage: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The segment file's name.
    public var segment: String
    /// Byte offset of the damage in the segment file.
    public var offset: Int64
    /// How many bytes are damaged (up to the next valid batch or the end of the file).
    public var length: Int64
    /// The seqs that the damaged bytes held, as far as the surrounding valid batches tell
    /// (nil when they cannot tell, e.g. at the end of the log).
    public var firstSeq: UInt64?
    public var lastSeq: UInt64?
    /// What is wrong with the bytes.
    public var defect: String

    public init(segment: String, offset: Int64, length: Int64, firstSeq: UInt64?, lastSeq: UInt64?, defect: String) {
        self.segment = segment
        self.offset = offset
        self.length = length
        self.firstSeq = firstSeq
        self.lastSeq = lastSeq
        self.defect = defect
    }

    public var seqRange: String {
        switch (firstSeq, lastSeq) {
        case (let first?, let last?) where last >= first: "seqs \(first)–\(last)"
        case (let first?, let last?) where last < first: "no whole seq (between \(last) and \(first))"
        case (let first?, nil): "seqs from \(first)"
        default: "unknown seqs"
        }
    }

    public var description: String {
        "\(segment) at byte \(offset) (\(length) bytes, \(seqRange)): \(defect)"
    }
}
