/// A statement that the hash chain's value after `seq` is `chain`: what a receipt, a saved
/// checkpoint or a `log.checkpoint` record in the log asserts. ``LogDirectory/verify(acknowledged:claims:inspect:)``
/// checks it against the chain it recomputes.
public struct ChainClaim: Sendable, Hashable, Codable {
    public var seq: UInt64
    public var chain: ChainValue
    /// Who makes the claim, for the report: "receipt", "checkpoint file", "log.checkpoint at seq 812".
    public var source: String

    public init(seq: UInt64, chain: ChainValue, source: String) {
        self.seq = seq
        self.chain = chain
        self.source = source
    }
}

/// Where a record was read, for a verifier's messages.
public struct RecordPosition: Sendable, Hashable {
    /// The segment file's name.
    public var segment: String
    /// The byte offset of the batch holding the record.
    public var offset: Int64
}

extension LogDirectory {
    /// The result of ``verify(acknowledged:claims:inspect:)``.
    public struct Verification: Sendable, Codable, Hashable {
        public var segments = 0
        public var batches = 0
        public var records: UInt64 = 0
        public var bytes: Int64 = 0
        /// Every damaged range of every segment and index file, and every broken link of the hash
        /// chain or failed claim.
        public var damage: [LogDamage] = []
        /// Things that are not damage: missing index files (rebuilt on open), ranges lost to an
        /// earlier repair, where the chain starts.
        public var notes: [String] = []
        /// The first seq covered by the hash chain (nil: no batch carries it, a log from before
        /// the chain).
        public var chainStartSeq: UInt64?
        /// Records covered by the chain (the rest were written before it).
        public var chainedRecords: UInt64 = 0
        /// The last seq and the chain value after it, as recomputed.
        public var chainHead: ChainHead?
        /// Every claim checked (given, and found by `inspect`), and whether it held.
        public var claims: [ClaimCheck] = []
        public var isClean: Bool { damage.isEmpty }
    }

    /// One claim and what checking it found.
    public struct ClaimCheck: Sendable, Codable, Hashable {
        public var claim: ChainClaim
        public var holds: Bool
        public var detail: String
    }

    /// How many recent batch ends a verification remembers the chain value of, to check the
    /// claims of `log.checkpoint` records (which attest a batch end shortly before them) in one
    /// pass. A claim further back is checked in a second pass.
    static let rememberedBatchEnds = 65_536

    /// Checks every batch (header, CRC-32C, payload decoding, seq continuity, timestamps) of every
    /// segment, every index file against the batches it points at, and the hash chain: every
    /// chained batch's records must hash, from the value after the batch before, to the value
    /// stored at its end (docs/log-format.md, "The hash chain").
    ///
    /// Every damaged range is reported with its segment, byte offset and seq range; the scan
    /// resumes at the next valid batch after each one, and the chain at the value the next
    /// batch stores. A log that ends before its recovery point's end seq or before
    /// `acknowledged`, where no loss was recorded, has lost acknowledged records: that is damage
    /// too. Ranges recorded as lost by a repair are notes, not damage; the chain is taken up
    /// again after them.
    ///
    /// `claims` (receipts, a saved checkpoint) are checked against the recomputed chain; a claim
    /// about a seq the log no longer reaches is damage (the log was cut back). `inspect` sees
    /// every record and returns the claims it makes about earlier seqs (Custody's
    /// `log.checkpoint` events); they are checked the same way.
    public func verify(
        acknowledged: AcknowledgedMark? = nil,
        claims: [ChainClaim] = [],
        inspect: ((LogRecord, RecordPosition) -> [ChainClaim])? = nil
    ) throws -> Verification {
        var pass = VerificationPass(directory: self, claims: claims, inspect: inspect)
        try pass.run(acknowledged: acknowledged)
        var result = pass.result
        if !pass.deferred.isEmpty {
            // Claims about seqs further back than the pass remembered: check them in a second pass.
            var second = VerificationPass(directory: self, claims: pass.deferred, inspect: nil)
            try second.run(acknowledged: acknowledged)
            result.claims += second.result.claims
            result.damage += second.result.damage.filter { $0.defect.hasPrefix(VerificationPass.claimDefectPrefix) }
        }
        return result
    }
}

/// One walk over a data directory for ``LogDirectory/verify(acknowledged:claims:inspect:)``.
struct VerificationPass {
    static let claimDefectPrefix = "claim fails: "

    let directory: LogDirectory
    let inspect: ((LogRecord, RecordPosition) -> [ChainClaim])?
    var result = LogDirectory.Verification()
    /// Claims known before the walk, by the seq they are about.
    var pending: [UInt64: [ChainClaim]] = [:]
    /// Claims found during the walk about seqs the pass no longer remembers.
    var deferred: [ChainClaim] = []
    /// The chain value after each recent batch end.
    var batchEnds: [UInt64: ChainValue] = [:]
    var batchEndOrder: [UInt64] = []

    init(directory: LogDirectory, claims: [ChainClaim], inspect: ((LogRecord, RecordPosition) -> [ChainClaim])?) {
        self.directory = directory
        self.inspect = inspect
        for claim in claims { pending[claim.seq, default: []].append(claim) }
    }

    mutating func check(_ claim: ChainClaim, against value: ChainValue?, at position: RecordPosition?, reason: String? = nil) {
        let holds = value == claim.chain
        let detail =
            holds
            ? "the chain after seq \(claim.seq) is \(claim.chain.hex)"
            : reason ?? "the chain after seq \(claim.seq) is \(value?.hex ?? "unknown"), not \(claim.chain.hex)"
        result.claims.append(LogDirectory.ClaimCheck(claim: claim, holds: holds, detail: detail))
        if !holds {
            result.damage.append(
                LogDamage(
                    segment: position?.segment ?? "(log)",
                    offset: position?.offset ?? 0,
                    length: 0,
                    firstSeq: claim.seq,
                    lastSeq: claim.seq,
                    defect: "\(Self.claimDefectPrefix)\(claim.source): \(detail)"
                )
            )
        }
    }

    mutating func remember(batchEnd seq: UInt64, _ value: ChainValue) {
        batchEnds[seq] = value
        batchEndOrder.append(seq)
        if batchEndOrder.count > 2 * LogDirectory.rememberedBatchEnds {
            for old in batchEndOrder.prefix(LogDirectory.rememberedBatchEnds) { batchEnds.removeValue(forKey: old) }
            batchEndOrder.removeFirst(LogDirectory.rememberedBatchEnds)
        }
    }

    mutating func run(acknowledged: AcknowledgedMark?) throws {
        let fileSystem = directory.fileSystem
        let dictionaries = SegmentDictionaries(fileSystem: fileSystem)
        let bases = try directory.segmentBases()
        let gaps = directory.quarantineRecords()
        func isGap(_ from: UInt64, _ to: UInt64) -> Bool {
            to > from && gaps.contains { $0.firstLostSeq <= from && $0.lastLostSeq >= to - 1 }
        }
        for entry in gaps {
            result.notes.append(
                "recorded loss: seqs \(entry.firstLostSeq)–\(entry.lastLostSeq) of \(entry.segment), quarantined by a repair (\(entry.defect))"
            )
        }
        /// The chain value after the last record checked; nil before the chain starts.
        var chain: ChainValue?
        if let first = bases.first, first > 1, let start = directory.retainedStart(), let before = start.chainValue(before: first) {
            // Retention deleted the segments before `first` and recorded where the chain stands.
            result.notes.append(
                "retention deleted seqs 1–\(first - 1); the hash chain is checked from the value retention.json records before seq \(first) (\(before.hex))"
            )
            chain = before
        } else if let first = bases.first, first > 1, !isGap(1, first) {
            result.damage.append(
                LogDamage(
                    segment: SegmentName.segment(first),
                    offset: 0,
                    length: 0,
                    firstSeq: 1,
                    lastSeq: first - 1,
                    defect: "seqs missing at the start of the log (the first segment starts at seq \(first))"
                )
            )
        }
        var expected: UInt64?
        var lastLength: Int64 = 0
        var lastTimestamp = Int64.min
        /// The next chained batch may not continue `chain` without that being damage: it follows
        /// a recorded loss or a damaged range (already reported).
        var reanchor = false
        for (position, base) in bases.enumerated() {
            let name = SegmentName.segment(base)
            let isLast = position == bases.count - 1
            let nextBase = isLast ? nil : bases[position + 1]
            if let expected, base != expected {
                if isGap(expected, base) {
                    reanchor = true
                } else {
                    result.damage.append(
                        LogDamage(
                            segment: name,
                            offset: 0,
                            length: 0,
                            firstSeq: min(expected, base),
                            lastSeq: max(expected, base) - 1,
                            defect: base > expected ? "seqs missing between segments" : "segment overlaps the one before it"
                        )
                    )
                }
            }
            let file = try fileSystem.openFile(at: joinPath(directory.path, name), mode: .readOnly)
            defer { try? file.close() }
            let length = try file.size()
            result.segments += 1
            result.bytes += length
            lastLength = length
            var scanner = SegmentScanner(file: file, length: length, path: joinPath(directory.path, name), dictionaries: dictionaries)
            var index = SegmentIndex(baseSeq: base)
            var batchStarts: [Int64: (seq: UInt64, timestamp: Int64)] = [:]
            var offset: Int64 = 0
            var seq = base
            scanning: while true {
                switch try scanner.batch(at: offset, check: .checksum) {
                case .end:
                    break scanning
                case .batch(let header, let at):
                    let here = RecordPosition(segment: name, offset: at)
                    if header.firstSeq != seq {
                        if isGap(seq, header.firstSeq) {
                            reanchor = true
                        } else {
                            result.damage.append(
                                LogDamage(
                                    segment: name,
                                    offset: at,
                                    length: 0,
                                    firstSeq: min(seq, header.firstSeq),
                                    lastSeq: max(seq, header.firstSeq) - 1,
                                    defect: header.firstSeq > seq ? "seqs missing" : "seqs repeated"
                                )
                            )
                        }
                    }
                    if header.firstTimestamp < lastTimestamp {
                        result.damage.append(
                            LogDamage(
                                segment: name,
                                offset: at,
                                length: Int64(header.totalLength),
                                firstSeq: header.firstSeq,
                                lastSeq: header.lastSeq,
                                defect: "timestamps go backwards"
                            )
                        )
                    }
                    switch try scanner.records(of: header, at: at) {
                    case .failure(let defect):
                        result.damage.append(
                            LogDamage(
                                segment: name,
                                offset: at,
                                length: Int64(header.totalLength),
                                firstSeq: header.firstSeq,
                                lastSeq: header.lastSeq,
                                defect: defect.description
                            )
                        )
                        reanchor = true
                    case .success(let records):
                        checkChain(
                            header,
                            records: records,
                            at: here,
                            chain: &chain,
                            reanchor: &reanchor,
                            stored: try scanner.chainValue(of: header, at: at)
                        )
                    }
                    batchStarts[at] = (header.firstSeq, header.firstTimestamp)
                    index.noteBatch(header, at: at, interval: 4096)
                    result.batches += 1
                    result.records += UInt64(header.recordCount)
                    lastTimestamp = header.lastTimestamp
                    seq = header.endSeq
                    offset = at + Int64(header.totalLength)
                case .damaged(let at, let defect):
                    let next = try scanner.nextValidBatch(after: at, minimumSeq: seq)
                    let end = next?.1 ?? length
                    let lastLost: UInt64? = next.map { $0.0.firstSeq &- 1 } ?? nextBase.map { $0 &- 1 }
                    var description = defect.description
                    if isLast && next == nil { description += " (at the end of the last segment: a torn tail, which opening the log cuts off)" }
                    result.damage.append(
                        LogDamage(segment: name, offset: at, length: end - at, firstSeq: seq, lastSeq: lastLost, defect: description)
                    )
                    reanchor = true
                    guard let (header, nextOffset) = next else { break scanning }
                    seq = header.firstSeq
                    offset = nextOffset
                }
            }
            expected = seq
            if !isLast {
                result.damage.append(contentsOf: directory.checkIndexFiles(base: base, length: length, endSeq: seq, batchStarts: batchStarts))
                if !fileSystem.fileExists(at: joinPath(directory.path, SegmentName.offsetIndex(base))) {
                    result.notes.append("\(name) has no index files (opening the log rebuilds them)")
                }
            }
        }
        let end = expected ?? 1
        if let chain { result.chainHead = ChainHead(seq: end - 1, chain: chain) }
        if let start = result.chainStartSeq {
            let retainedFrom = directory.retainedStart().flatMap { start in bases.first.map { $0 >= start.firstSeq ? $0 : 0 } } ?? 0
            result.notes.append(
                start <= 1
                    ? "the hash chain covers every record"
                    : start == retainedFrom
                        ? "the hash chain covers every record retention kept"
                        : "the hash chain starts at seq \(start); the \(start - 1) records before it were written before the chain (format 1) and are checked by CRC only"
            )
        } else if result.records > 0 {
            result.notes.append("no batch carries the hash chain: the log was written before it (format 1), and is checked by CRC only")
        }
        // Claims about seqs the log does not reach: it was cut back after they were made.
        let lastSegment = bases.last.map(SegmentName.segment) ?? "(all)"
        for (seq, claims) in pending.sorted(by: { $0.key < $1.key }) {
            for claim in claims {
                let reason =
                    seq >= end
                    ? "the log ends at seq \(end - 1), before seq \(seq) that it attests: records were removed from the end"
                    : "seq \(seq) is not covered by the hash chain"
                check(claim, against: nil, at: RecordPosition(segment: lastSegment, offset: lastLength), reason: reason)
            }
        }
        // The end: does the log reach every seq known to have been acknowledged?
        var durable = (seq: UInt64(1), witness: "")
        if let point = RecoveryPoint.load(from: directory.path, fileSystem: fileSystem), point.endSeq > durable.seq {
            durable = (point.endSeq, "the recovery point")
        }
        if let acknowledged, acknowledged.seq >= durable.seq { durable = (acknowledged.seq + 1, acknowledged.witness) }
        if end < durable.seq && !isGap(end, durable.seq) {
            result.damage.append(
                LogDamage(
                    segment: lastSegment,
                    offset: lastLength,
                    length: 0,
                    firstSeq: end,
                    lastSeq: durable.seq - 1,
                    defect:
                        "acknowledged records are missing from the end of the log (\(durable.witness) shows the log reached seq \(durable.seq - 1))"
                )
            )
        }
    }

    /// Recomputes the chain over one batch's records and compares it with the value it stores.
    mutating func checkChain(
        _ header: BatchHeader,
        records: [LogRecord],
        at position: RecordPosition,
        chain: inout ChainValue?,
        reanchor: inout Bool,
        stored: ChainValue?
    ) {
        guard let stored else {
            // A batch from before the chain.
            if chain != nil {
                result.damage.append(
                    LogDamage(
                        segment: position.segment,
                        offset: position.offset,
                        length: Int64(header.totalLength),
                        firstSeq: header.firstSeq,
                        lastSeq: header.lastSeq,
                        defect: "a batch without the hash chain (format 1) after the chain started: batches were replaced"
                    )
                )
            }
            for record in records {
                for claim in pending.removeValue(forKey: record.seq) ?? [] {
                    check(claim, against: nil, at: position, reason: "seq \(record.seq) is in a batch from before the hash chain")
                }
                if let inspect { _ = inspect(record, position) }
            }
            return
        }
        if result.chainStartSeq == nil { result.chainStartSeq = header.firstSeq }
        var value = chain ?? .zero
        // Per-record values are needed only where a claim is about a seq inside this batch.
        for record in records {
            value = value.next(record)
            if let claims = pending.removeValue(forKey: record.seq) {
                for claim in claims { check(claim, against: value, at: position) }
            }
        }
        result.chainedRecords += UInt64(records.count)
        if value != stored {
            if reanchor {
                result.notes.append(
                    "the hash chain is taken up again at seq \(header.firstSeq) (\(position.segment) byte \(position.offset)) after a recorded loss or damage before it; seqs \(header.firstSeq)–\(header.lastSeq) are checked against the value their batch stores only"
                )
            } else {
                result.damage.append(
                    LogDamage(
                        segment: position.segment,
                        offset: position.offset,
                        length: Int64(header.totalLength),
                        firstSeq: header.firstSeq,
                        lastSeq: header.lastSeq,
                        defect:
                            "hash chain mismatch: the records do not hash to the chain value the batch stores (an event was changed, or a batch was removed, reordered or inserted at or before here)"
                    )
                )
            }
        }
        reanchor = false
        // Go on from what the batch stores, so one edit is reported once.
        chain = stored
        remember(batchEnd: header.lastSeq, stored)
        if let inspect {
            for record in records {
                for claim in inspect(record, position) {
                    if let known = batchEnds[claim.seq] {
                        check(claim, against: known, at: position)
                    } else if claim.seq >= record.seq {
                        check(
                            claim,
                            against: nil,
                            at: position,
                            reason: "a record at seq \(record.seq) attests seq \(claim.seq), which is not before it"
                        )
                    } else {
                        deferred.append(claim)
                    }
                }
            }
        }
    }
}
