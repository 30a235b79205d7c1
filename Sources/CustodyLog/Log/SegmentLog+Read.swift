/// Reading: from any seq, concurrently with appends, never past the last acknowledged record.
extension SegmentLog {
    /// Where to read a seq: one segment file, from an indexed offset up to its readable end.
    struct ReadPlan: Sendable {
        var path: String
        var start: Int64
        var end: Int64
    }

    /// The first seq the log still holds.
    public var firstSeq: UInt64 { sealedSegments.first?.baseSeq ?? activeSegment.baseSeq }

    /// The last acknowledged seq (0 when the log is empty).
    public var lastSeq: UInt64 { nextSeq - 1 }

    /// The last acknowledged seq and the hash chain's value after it, together.
    public var chainHead: ChainHead { ChainHead(seq: chainValueSeq, chain: chainValue) }

    /// The hash chain's value after record `seq` (docs/log-format.md, "The hash chain"): read
    /// from the value stored at the end of the batch before it, and the records of its own
    /// batch up to it. Nil when the log does not hold `seq` or holds it from before the chain.
    public func chainValue(after seq: UInt64) async throws -> ChainValue? {
        if seq == chainValueSeq { return configuration.hashChain || seq == 0 ? chainValue : nil }
        guard seq < nextSeq else { return nil }
        // Just before the first seq retention kept: the value it recorded.
        if seq + 1 == firstSeq, let start = retainedStart?.chainValue(before: seq + 1) { return start }
        var segments = sealedSegments.map { ChainLookup.Segment(baseSeq: $0.baseSeq, index: $0.index) }
        segments.append(ChainLookup.Segment(baseSeq: activeSegment.baseSeq, index: activeSegment.index))
        let lookup = ChainLookup(
            directory: directory,
            fileSystem: fileSystem,
            segments: segments,
            starts: retainedStart?.starts ?? [:],
            dictionaries: dictionaries
        )
        return try await runIO { try lookup.value(after: seq) }.get()
    }

    /// Reads records from `seq` on (or from the first one after it that the log holds): whole
    /// batches, until at least `maxRecords` records or the end of a segment. Empty when `seq` is
    /// past the last acknowledged record.
    public func read(from seq: UInt64, maxRecords: Int = 10_000) async throws -> [LogRecord] {
        guard let plan = readPlan(from: seq) else { return [] }
        let (fileSystem, dictionaries) = (fileSystem, dictionaries)
        return try await runIO { try Self.readRecords(plan, from: seq, maxRecords: maxRecords, fileSystem: fileSystem, dictionaries: dictionaries) }
            .get()
    }

    /// The records at the given seqs (in seq order; a seq the log does not hold is left out):
    /// for scattered reads — the spans of one trace — one I/O job in all, each batch read and
    /// checked once, from the indexed offset of the first wanted seq it holds, and only the wanted
    /// records sliced out.
    public func read(seqs: [UInt64]) async throws -> [LogRecord] {
        let wanted = Array(Set(seqs.filter { $0 >= firstSeq && $0 < nextSeq })).sorted()
        guard !wanted.isEmpty else { return [] }
        var plans: [(seq: UInt64, plan: ReadPlan)] = []
        plans.reserveCapacity(wanted.count)
        for seq in wanted {
            if let plan = readPlan(from: seq) { plans.append((seq, plan)) }
        }
        let (fileSystem, dictionaries) = (fileSystem, dictionaries)
        // Many seqs: two halves on the two I/O threads at once (each batch still read once: a
        // batch's wanted seqs stay in one half).
        var split = plans.count / 2
        while split > 0, split < plans.count, plans[split].plan.start == plans[split - 1].plan.start,
            plans[split].plan.path == plans[split - 1].plan.path
        {
            split += 1
        }
        guard plans.count >= 64, split < plans.count else {
            let planned = plans
            return try await runIO { try Self.readScattered(planned, fileSystem: fileSystem, dictionaries: dictionaries) }.get()
        }
        let first = Array(plans[..<split])
        let second = Array(plans[split...])
        async let head = runIO { try Self.readScattered(first, fileSystem: fileSystem, dictionaries: dictionaries) }
        async let tail = runIO { try Self.readScattered(second, fileSystem: fileSystem, dictionaries: dictionaries) }
        return try await head.get() + tail.get()
    }

    static func readScattered(
        _ plans: [(seq: UInt64, plan: ReadPlan)],
        fileSystem: any LogFileSystem,
        dictionaries: SegmentDictionaries
    ) throws -> [LogRecord] {
        var records: [LogRecord] = []
        records.reserveCapacity(plans.count)
        var index = 0
        while index < plans.count {
            // The wanted seqs of one segment file.
            let path = plans[index].plan.path
            var end = index
            while end < plans.count, plans[end].plan.path == path { end += 1 }
            let file = try fileSystem.openFile(at: path, mode: .readOnly)
            defer { try? file.close() }
            // Scattered reads: read ahead about one compressed batch (a batch of the default
            // 64 KiB compresses to ~11 KiB); a longer batch is read whole once its header is seen.
            var scanner = SegmentScanner(
                file: file,
                length: plans[index].plan.end,
                readAhead: 16 << 10,
                path: path,
                dictionaries: dictionaries
            )
            while index < end {
                let seq = plans[index].seq
                var offset = plans[index].plan.start
                search: while true {
                    switch try scanner.batch(at: offset, check: .checksum) {
                    case .end(_):
                        break search
                    case .damaged(let at, let defect):
                        throw LogError(.corruption, "\(path) is damaged at byte \(at): \(defect)")
                    case .batch(let header, let at):
                        offset = at + Int64(header.totalLength)
                        guard header.lastSeq >= seq else { continue }
                        // Every wanted seq of this batch at once.
                        var last = index
                        while last + 1 < end, plans[last + 1].seq <= header.lastSeq { last += 1 }
                        switch try scanner.records(of: header, at: at, wanted: seq...plans[last].seq) {
                        case .failure(let defect):
                            throw LogError(.corruption, "\(path) is damaged at byte \(at): \(defect)")
                        case .success(let batch):
                            let wanted = Set(plans[index...last].map(\.seq))
                            records.append(contentsOf: batch.filter { wanted.contains($0.seq) })
                        }
                        index = last
                        break search
                    }
                }
                index += 1
            }
        }
        return records
    }

    func readPlan(from requested: UInt64) -> ReadPlan? {
        var seq = max(requested, firstSeq)
        guard seq < nextSeq else { return nil }
        if seq >= activeSegment.baseSeq {
            return ReadPlan(
                path: joinPath(directory, SegmentName.segment(activeSegment.baseSeq)),
                start: activeSegment.index.offset(forSeq: seq),
                end: activeSegment.length
            )
        }
        // The last sealed segment starting at or before seq.
        var low = 0
        var high = sealedSegments.count
        while low < high {
            let middle = (low + high) / 2
            if sealedSegments[middle].baseSeq <= seq { low = middle + 1 } else { high = middle }
        }
        var position = max(low - 1, 0)
        // A seq lost to a repair at the end of a segment: go on with the next one.
        while seq >= sealedSegments[position].index.endSeq {
            position += 1
            if position == sealedSegments.count { return readPlan(from: max(seq, activeSegment.baseSeq)) }
            seq = sealedSegments[position].baseSeq
        }
        let segment = sealedSegments[position]
        return ReadPlan(
            path: joinPath(directory, SegmentName.segment(segment.baseSeq)),
            start: segment.index.offset(forSeq: seq),
            end: segment.length
        )
    }

    static func readRecords(
        _ plan: ReadPlan,
        from seq: UInt64,
        maxRecords: Int,
        fileSystem: any LogFileSystem,
        dictionaries: SegmentDictionaries
    ) throws -> [LogRecord] {
        let file = try fileSystem.openFile(at: plan.path, mode: .readOnly)
        defer { try? file.close() }
        var scanner = SegmentScanner(file: file, length: plan.end, path: plan.path, dictionaries: dictionaries)
        var records: [LogRecord] = []
        var offset = plan.start
        while records.count < maxRecords {
            switch try scanner.batch(at: offset, check: .checksum) {
            case .end(_):
                return records
            case .damaged(let at, let defect):
                throw LogError(
                    .corruption,
                    "\(plan.path) is damaged at byte \(at): \(defect)",
                    damage: [
                        LogDamage(segment: plan.path, offset: at, length: plan.end - at, firstSeq: nil, lastSeq: nil, defect: defect.description)
                    ]
                )
            case .batch(let header, let at):
                offset = at + Int64(header.totalLength)
                guard header.lastSeq >= seq else { continue }
                switch try scanner.records(of: header, at: at) {
                case .failure(let defect):
                    throw LogError(
                        .corruption,
                        "\(plan.path) is damaged at byte \(at): \(defect)",
                        damage: [
                            LogDamage(
                                segment: plan.path,
                                offset: at,
                                length: Int64(header.totalLength),
                                firstSeq: header.firstSeq,
                                lastSeq: header.lastSeq,
                                defect: defect.description
                            )
                        ]
                    )
                case .success(let batch):
                    if header.firstSeq >= seq {
                        records.append(contentsOf: batch)
                    } else {
                        records.append(contentsOf: batch[Int(seq - header.firstSeq)...])
                    }
                }
            }
        }
        return records
    }

    /// Waits until a record after `seq` is acknowledged; returns the last acknowledged seq.
    /// Throws `CancellationError` when the task is cancelled, ``LogError/Code/closed`` on close.
    public func waitForAppend(after seq: UInt64) async throws -> UInt64 {
        if lastSeq > seq { return lastSeq }
        guard isOpen else { throw LogError(.closed, "the log is closed") }
        let id = registerHeadWaiterID()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                if Task.isCancelled {
                    continuation.resume(throwing: CancellationError())
                } else {
                    addHeadWaiter(id: id, after: seq, continuation: continuation)
                }
            }
        } onCancel: {
            Task { await self.cancelHeadWaiter(id) }
        }
    }

    /// The first seq whose timestamp is at or after `timestamp` (``lastSeq`` + 1 when none is).
    /// Uses the time indexes to read only the batch that straddles `timestamp`.
    public func firstSeq(atOrAfter timestamp: Int64) async throws -> UInt64 {
        var candidates: [(base: UInt64, index: SegmentIndex)] = sealedSegments.map { ($0.baseSeq, $0.index) }
        candidates.append((activeSegment.baseSeq, activeSegment.index))
        guard let segment = candidates.first(where: { $0.index.coveredLength > 0 && $0.index.lastTimestamp >= timestamp }) else {
            return nextSeq
        }
        let plan = ReadPlan(
            path: joinPath(directory, SegmentName.segment(segment.base)),
            start: segment.index.offset(forTimestamp: timestamp),
            end: segment.index.coveredLength
        )
        let (fileSystem, dictionaries) = (fileSystem, dictionaries)
        let fallback = segment.index.endSeq
        return try await runIO {
            let file = try fileSystem.openFile(at: plan.path, mode: .readOnly)
            defer { try? file.close() }
            var scanner = SegmentScanner(file: file, length: plan.end, path: plan.path, dictionaries: dictionaries)
            var offset = plan.start
            while case .batch(let header, let at) = try scanner.batch(at: offset, check: .checksum) {
                offset = at + Int64(header.totalLength)
                guard header.lastTimestamp >= timestamp else { continue }
                if header.firstTimestamp >= timestamp { return header.firstSeq }
                if case .success(let records) = try scanner.records(of: header, at: at),
                    let first = records.first(where: { $0.timestamp >= timestamp })
                {
                    return first.seq
                }
            }
            return fallback
        }.get()
    }

    /// The log's segments, seqs and counters.
    public func status() -> LogStatus {
        var segments = sealedSegments.map { segment in
            LogStatus.Segment(
                name: SegmentName.segment(segment.baseSeq),
                baseSeq: segment.baseSeq,
                endSeq: segment.index.endSeq,
                bytes: segment.length,
                firstTimestamp: segment.index.firstTimestamp,
                lastTimestamp: segment.index.coveredLength > 0 ? segment.index.lastTimestamp : nil,
                sealed: true
            )
        }
        segments.append(
            LogStatus.Segment(
                name: SegmentName.segment(activeSegment.baseSeq),
                baseSeq: activeSegment.baseSeq,
                endSeq: activeSegment.index.endSeq,
                bytes: activeSegment.length,
                firstTimestamp: activeSegment.index.firstTimestamp,
                lastTimestamp: activeSegment.length > 0 ? activeSegment.index.lastTimestamp : nil,
                sealed: false
            )
        )
        return LogStatus(
            firstSeq: firstSeq,
            lastSeq: lastSeq,
            segments: segments,
            failure: currentFailure?.message,
            statistics: currentStatistics,
            recovery: recoveryReport,
            losses: recordedLosses
        )
    }
}

/// A snapshot of the log, for `inspect` and the admin API.
public struct LogStatus: Sendable, Codable, Hashable {
    public struct Segment: Sendable, Codable, Hashable {
        public var name: String
        public var baseSeq: UInt64
        /// The seq after the segment's last record.
        public var endSeq: UInt64
        public var bytes: Int64
        public var firstTimestamp: Int64?
        public var lastTimestamp: Int64?
        public var sealed: Bool
    }

    public var firstSeq: UInt64
    public var lastSeq: UInt64
    public var segments: [Segment]
    /// Why appends are failing, when they are.
    public var failure: String?
    public var statistics: LogStatistics
    public var recovery: RecoveryReport
    /// Every range recorded as lost by a repair (`quarantine.json`), this open's and earlier.
    public var losses: [QuarantineRecord]

    public init(
        firstSeq: UInt64,
        lastSeq: UInt64,
        segments: [Segment],
        failure: String?,
        statistics: LogStatistics,
        recovery: RecoveryReport,
        losses: [QuarantineRecord]
    ) {
        self.firstSeq = firstSeq
        self.lastSeq = lastSeq
        self.segments = segments
        self.failure = failure
        self.statistics = statistics
        self.recovery = recovery
        self.losses = losses
    }
}

/// Records from a seq on, following the log: each element is the records of one read (whole
/// batches, in seq order). Waits for appends when it reaches the end; finishes when the log closes.
public struct LogTail: AsyncSequence, Sendable {
    public typealias Element = [LogRecord]
    let log: any EventLog
    let start: UInt64

    public struct AsyncIterator: AsyncIteratorProtocol {
        let log: any EventLog
        var next: UInt64

        public mutating func next() async throws -> [LogRecord]? {
            while true {
                try Task.checkCancellation()
                let records = try await log.read(from: next, maxRecords: 4096)
                if let last = records.last {
                    next = last.seq + 1
                    return records
                }
                do {
                    _ = try await log.waitForAppend(after: next - 1)
                } catch let error as LogError where error.code == .closed {
                    return nil
                }
            }
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(log: log, next: Swift.max(start, 1))
    }
}
