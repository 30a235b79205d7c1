import SystemPackage

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A sealed segment: its base seq and its (complete) index.
struct SealedSegment: Sendable {
    var baseSeq: UInt64
    var index: SegmentIndex
    var length: Int64 { index.coveredLength }
}

/// Brings a data directory to a consistent state before the log is used: the synchronous,
/// blocking work of ``SegmentLog/open(directory:configuration:damagePolicy:fileSystem:threadPool:logger:)``.
///
/// The rules, in order:
/// 1. Unfinished temporary files are removed.
/// 2. Every sealed segment (all but the last) must be whole: its index files are trusted when they
///    describe exactly the segment's current length; otherwise the segment is scanned with
///    checksums and its index files are written again. Any damage in a sealed segment is
///    corruption: it was synchronized before the next segment was created.
/// 3. Seqs run on without gaps from segment to segment, except across a range recorded as lost by
///    an earlier repair.
/// 4. The last segment is walked by header up to the recovery point and checked by checksum after
///    it. At the first damage, the damage is a *torn tail* — cut off and reported — when no valid
///    batch follows it, or when every valid batch that follows belongs to the same, final write
///    (no batch marks the end of a write and is followed by more), or was written under a policy
///    that acknowledges before fsync. Otherwise it is corruption.
/// 5. Corruption makes the open fail with every detail (segment, offset, seqs), unless the damage
///    policy is ``DamagePolicy/quarantine``: then every segment is checked by checksum (index
///    files and the recovery point's walk are not trusted), the damaged bytes move to a side
///    file, the loss is recorded in `quarantine.json`, and the scan goes on.
/// 6. A log that ends — after any torn tail is cut — before its *durable end* has lost
///    acknowledged records: the durable end is the newest of the recovery point's end seq and
///    the caller's ``AcknowledgedMark``. Then the open fails with ``LogError/Code/dataLoss``
///    before anything is changed, unless the policy is ``DamagePolicy/quarantine``: then the
///    bytes cut (if any) move to a side file, the lost range is recorded in `quarantine.json`,
///    and a new segment starts at the durable end, so that no seq is ever given out twice.
struct LogRecovery {
    let directory: String
    let fileSystem: any LogFileSystem
    let configuration: LogConfiguration
    let damagePolicy: DamagePolicy
    let acknowledged: AcknowledgedMark?
    var report = RecoveryReport()
    var quarantine: [QuarantineRecord] = []
    /// Every seq below `seq` had been acknowledged, as `witness` says (rule 6).
    var durableEnd = (seq: UInt64(1), witness: "")
    /// The side file a loss's cut bytes were moved into, for its quarantine record.
    var lossSideFile: (name: String, offset: Int64, length: Int64)?
    /// The segment the recovery point was about.
    var recoveryPointBase: UInt64?

    struct Recovered {
        var sealed: [SealedSegment]
        var activeBase: UInt64
        var activeIndex: SegmentIndex
        var activeFile: any LogFile
        var lastTimestamp: Int64
        var lock: any LogFile
        var report: RecoveryReport
        /// Every range `quarantine.json` records, from this open and earlier ones.
        var losses: [QuarantineRecord]

        var segmentSpans: [ChainLookup.Segment] {
            sealed.map { ChainLookup.Segment(baseSeq: $0.baseSeq, index: $0.index) }
                + [ChainLookup.Segment(baseSeq: activeBase, index: activeIndex)]
        }
    }

    init(
        directory: String,
        fileSystem: any LogFileSystem,
        configuration: LogConfiguration,
        damagePolicy: DamagePolicy,
        acknowledged: AcknowledgedMark? = nil
    ) {
        self.directory = directory
        self.fileSystem = fileSystem
        self.configuration = configuration
        self.damagePolicy = damagePolicy
        self.acknowledged = acknowledged
    }

    func path(_ name: String) -> String { joinPath(directory, name) }

    mutating func run() throws -> Recovered {
        let started = ContinuousClock.now
        do {
            try fileSystem.createDirectory(at: directory)
        } catch {
            throw LogError.storageUnavailable("cannot create the data directory \(directory)", error)
        }
        let lock: any LogFile
        do {
            lock = try fileSystem.lockFile(at: path(SegmentName.lockFile))
        } catch let error as Errno where error == .wouldBlock || error == .resourceTemporarilyUnavailable {
            throw LogError(.directoryLocked, "another process has the data directory \(directory) open")
        }
        do {
            var recovered = try recover(lock: lock)
            report.durationSeconds = Self.seconds(ContinuousClock.now - started)
            recovered.report = report
            return recovered
        } catch {
            try? lock.close()
            throw error
        }
    }

    static func seconds(_ duration: Duration) -> Double {
        duration.inSeconds
    }

    private mutating func recover(lock: any LogFile) throws -> Recovered {
        let names = try fileSystem.contentsOfDirectory(at: directory)
        for name in names where name.hasSuffix(SegmentName.temporarySuffix) {
            try fileSystem.removeFile(at: path(name))
            report.removedFiles.append(name)
        }
        // A dictionary whose segment is gone (retention stopped between the two deletions).
        for name in names where name.hasSuffix(SegmentName.dictionarySuffix) {
            let segment = String(name.dropLast(SegmentName.dictionarySuffix.count)) + SegmentName.segmentSuffix
            guard SegmentName.baseSeq(ofSegment: segment) != nil, !names.contains(segment) else { continue }
            try fileSystem.removeFile(at: path(name))
            report.removedFiles.append(name)
        }
        quarantine = try loadQuarantine()
        var bases = names.compactMap(SegmentName.baseSeq(ofSegment:)).sorted()
        let recoveryPoint = loadRecoveryPoint()
        recoveryPointBase = recoveryPoint?.segmentBase

        if let recoveryPoint, recoveryPoint.endSeq > durableEnd.seq {
            durableEnd = (recoveryPoint.endSeq, "the recovery point saved when the log was last synchronized")
        }
        if let acknowledged, acknowledged.seq >= durableEnd.seq {
            durableEnd = (acknowledged.seq + 1, acknowledged.witness)
        }

        if bases.isEmpty {
            if durableEnd.seq > 1 && !isRecordedGap(from: 1, to: durableEnd.seq) {
                let damage = LogDamage(
                    segment: "(all)",
                    offset: 0,
                    length: 0,
                    firstSeq: 1,
                    lastSeq: durableEnd.seq - 1,
                    defect: "every segment file is missing"
                )
                guard damagePolicy == .quarantine else { throw lossError(damage, witness: durableEnd.witness) }
                try record(
                    QuarantineRecord(
                        segment: "(all)",
                        offset: 0,
                        length: 0,
                        sideFile: nil,
                        firstLostSeq: 1,
                        lastLostSeq: durableEnd.seq - 1,
                        defect: damage.defect
                    )
                )
            }
            bases = [try createSegment(durableEnd.seq)]
            try fileSystem.synchronizeDirectory(at: directory)
        }

        var sealed: [SealedSegment] = []
        var expectedSeq: UInt64? = nil
        var lastTimestamp: Int64 = .min
        for (position, base) in bases.enumerated() {
            let isLast = position == bases.count - 1
            if let expected = expectedSeq, base != expected, !isRecordedGap(from: expected, to: base) {
                let damage = LogDamage(
                    segment: SegmentName.segment(base),
                    offset: 0,
                    length: 0,
                    firstSeq: expected,
                    lastSeq: base &- 1,
                    defect: base > expected ? "seqs missing between segments" : "segment overlaps the one before it"
                )
                guard damagePolicy == .quarantine, base > expected else { throw corruption([damage]) }
                try record(
                    QuarantineRecord(
                        segment: damage.segment,
                        offset: 0,
                        length: 0,
                        sideFile: nil,
                        firstLostSeq: expected,
                        lastLostSeq: base - 1,
                        defect: damage.defect
                    )
                )
            }
            if isLast {
                var (index, file) = try recoverLastSegment(base, recoveryPoint: recoveryPoint, lastTimestamp: &lastTimestamp)
                var activeBase = base
                if index.endSeq < durableEnd.seq {
                    // A loss recorded (now or by an earlier repair): numbering goes on after every
                    // seq ever acknowledged, in a segment of its own.
                    if index.coveredLength > 0 {
                        try writeIndexFiles(index, base: base)
                        sealed.append(SealedSegment(baseSeq: base, index: index))
                        try file.close()
                    } else {
                        try file.close()
                        try fileSystem.removeFile(at: path(SegmentName.segment(base)))
                        report.removedFiles.append(SegmentName.segment(base))
                    }
                    activeBase = durableEnd.seq
                    file = try SegmentLog.createSegmentFile(activeBase, directory: directory, fileSystem: fileSystem)
                    index = SegmentIndex(baseSeq: activeBase)
                    try saveRecoveryPoint(file: file, base: activeBase, index: index)
                }
                report.segments = sealed.count + 1
                report.endSeq = index.endSeq
                return Recovered(
                    sealed: sealed,
                    activeBase: activeBase,
                    activeIndex: index,
                    activeFile: file,
                    lastTimestamp: max(lastTimestamp, 0),
                    lock: lock,
                    report: report,
                    losses: quarantine
                )
            }
            guard let index = try recoverSealedSegment(base, lastTimestamp: &lastTimestamp) else {
                continue  // an empty segment in the middle: removed
            }
            sealed.append(SealedSegment(baseSeq: base, index: index))
            expectedSeq = index.endSeq
        }
        preconditionFailure("the loop returns at the last segment")
    }

    // MARK: Segments

    private func createSegment(_ base: UInt64) throws -> UInt64 {
        let file = try fileSystem.openFile(at: path(SegmentName.segment(base)), mode: .createNew)
        try file.close()
        return base
    }

    /// A sealed segment's index, from its index files or by scanning it; nil when it was empty
    /// (and has been removed).
    private mutating func recoverSealedSegment(_ base: UInt64, lastTimestamp: inout Int64) throws -> SegmentIndex? {
        let name = SegmentName.segment(base)
        while true {
            let file = try fileSystem.openFile(at: path(name), mode: .readOnly)
            defer { try? file.close() }
            let length = try file.size()
            if length == 0 {
                try fileSystem.removeFile(at: path(name))
                try fileSystem.synchronizeDirectory(at: directory)
                report.removedFiles.append(name)
                return nil
            }
            // Repair checks every byte: index files are only trusted when not repairing.
            if damagePolicy == .refuse,
                let index = SegmentIndexFile.load(fileSystem: fileSystem, directory: directory, baseSeq: base, segmentLength: length),
                index.firstTimestamp.map({ $0 >= lastTimestamp }) ?? true
            {
                lastTimestamp = index.lastTimestamp
                return index
            }
            var index = SegmentIndex(baseSeq: base)
            var scanner = SegmentScanner(file: file, length: length)
            var timestamp = lastTimestamp
            let outcome = try scan(&scanner, index: &index, from: 0, check: .checksum, lastTimestamp: &timestamp)
            report.bytesVerified += index.coveredLength
            guard let damage = outcome else {
                lastTimestamp = timestamp
                try writeIndexFiles(index, base: base)
                report.indexesRebuilt.append(name)
                return index
            }
            // Damage in a sealed segment is never a torn tail.
            let following = try validBatches(after: damage.offset, in: &scanner, minimumSeq: index.endSeq)
            let end = following.first?.offset ?? length
            let lost = LogDamage(
                segment: name,
                offset: damage.offset,
                length: end - damage.offset,
                firstSeq: index.endSeq,
                lastSeq: following.first.map { $0.header.firstSeq &- 1 },
                defect: damage.defect.description
            )
            try quarantineOrThrow(lost, base: base, file: file, fileLength: length)
        }
    }

    /// The last segment's index and an open, writable handle, with a torn tail cut off.
    private mutating func recoverLastSegment(
        _ base: UInt64,
        recoveryPoint: RecoveryPoint?,
        lastTimestamp: inout Int64
    ) throws -> (SegmentIndex, any LogFile) {
        let name = SegmentName.segment(base)
        while true {
            let file = try fileSystem.openFile(at: path(name), mode: .readWrite)
            var keepOpen = false
            defer { if !keepOpen { try? file.close() } }
            let length = try file.size()
            // The recovery point is trusted only when it is about this segment and the file still
            // reaches it; otherwise every byte is checked.
            var trusted: Int64 = 0
            if let recoveryPoint, recoveryPoint.segmentBase == base, recoveryPoint.offset <= length {
                trusted = recoveryPoint.offset
            }
            // Repair checks every byte by checksum, but still judges damage below the recovery
            // point as damage to acknowledged data.
            let walkedLength = damagePolicy == .quarantine ? 0 : trusted
            var index = SegmentIndex(baseSeq: base)
            var timestamp = lastTimestamp
            var scanner = SegmentScanner(file: file, length: length, readAhead: 1 << 20)
            var outcome: ScanDamage? = nil
            if walkedLength > 0 {
                var walker = SegmentScanner(file: file, length: walkedLength, readAhead: 256 << 10)
                outcome = try scan(&walker, index: &index, from: 0, check: .header, lastTimestamp: &timestamp)
                report.bytesWalked += index.coveredLength
                // Damage found by the walk lies below the recovery point: in acknowledged data.
            }
            if outcome == nil {
                let start = index.coveredLength
                outcome = try scan(&scanner, index: &index, from: start, check: .checksum, lastTimestamp: &timestamp)
                report.bytesVerified += index.coveredLength - start
            }
            guard let damage = outcome else {
                lastTimestamp = timestamp
                if index.endSeq < durableEnd.seq && !isRecordedGap(from: index.endSeq, to: durableEnd.seq) {
                    let missing = missingAcknowledged(segment: name, index: index)
                    guard damagePolicy == .quarantine else { throw lossError(missing, witness: durableEnd.witness) }
                    try record(
                        QuarantineRecord(
                            segment: name,
                            offset: lossSideFile?.offset ?? index.coveredLength,
                            length: lossSideFile?.length ?? 0,
                            sideFile: lossSideFile?.name,
                            firstLostSeq: index.endSeq,
                            lastLostSeq: durableEnd.seq - 1,
                            defect: missing.defect
                        )
                    )
                }
                keepOpen = true
                if index.endSeq >= durableEnd.seq { try saveRecoveryPoint(file: file, base: base, index: index) }
                return (index, file)
            }
            let following = try validBatches(after: damage.offset, in: &scanner, minimumSeq: index.endSeq)
            let laterWriteExists = following.dropLast().contains { $0.header.flags & BatchHeader.flagEndOfWrite != 0 }
            let deferredSync = following.contains { $0.header.flags & BatchHeader.flagDeferredSync != 0 }
            let isTornTail = following.isEmpty || (damage.offset >= trusted && (!laterWriteExists || deferredSync))
            if isTornTail {
                if index.endSeq < durableEnd.seq && !isRecordedGap(from: index.endSeq, to: durableEnd.seq) {
                    // Cutting here would lose acknowledged records: not a torn tail but a loss.
                    var missing = missingAcknowledged(segment: name, index: index)
                    missing.offset = damage.offset
                    missing.length = length - damage.offset
                    guard damagePolicy == .quarantine else {
                        throw lossError(missing, witness: durableEnd.witness, cut: damage.defect.description)
                    }
                    let sideName = SegmentName.quarantine(base, offset: damage.offset)
                    let cut = try file.read(count: Int(length - damage.offset), at: damage.offset)
                    try replaceFileAtomically(cut, named: sideName, in: directory, fileSystem: fileSystem)
                    lossSideFile = (sideName, damage.offset, length - damage.offset)
                }
                try file.truncate(to: damage.offset)
                try file.synchronize()
                let dropped = following.map { $0.header.firstSeq...$0.header.lastSeq }
                report.tailCuts.append(
                    RecoveryReport.TailCut(
                        segment: name,
                        offset: damage.offset,
                        bytesCut: length - damage.offset,
                        defect: damage.defect.description,
                        droppedSeqs: dropped,
                        reachedAcknowledgedData: recoveryPoint.map { $0.segmentBase == base && damage.offset < $0.offset } ?? false
                    )
                )
                continue  // scan again: the segment now ends at the cut
            }
            let end = following[0].offset
            let lost = LogDamage(
                segment: name,
                offset: damage.offset,
                length: end - damage.offset,
                firstSeq: index.endSeq,
                lastSeq: following[0].header.firstSeq &- 1,
                defect: damage.defect.description
            )
            try quarantineOrThrow(lost, base: base, file: file, fileLength: length)
        }
    }

    struct ScanDamage {
        var offset: Int64
        var defect: BatchHeader.Defect
    }

    /// Scans batches from `start`, adding them to `index`; returns the first damage, or nil when
    /// the scanner's length is reached cleanly.
    private func scan(
        _ scanner: inout SegmentScanner,
        index: inout SegmentIndex,
        from start: Int64,
        check: SegmentScanner.Check,
        lastTimestamp: inout Int64
    ) throws -> ScanDamage? {
        var offset = start
        while true {
            switch try scanner.batch(at: offset, check: check) {
            case .end:
                return nil
            case .damaged(let at, let defect):
                return ScanDamage(offset: at, defect: defect)
            case .batch(let header, let at):
                if header.firstSeq != index.endSeq && !isRecordedGap(from: index.endSeq, to: header.firstSeq) {
                    return ScanDamage(offset: at, defect: .unexpectedSeq(expected: index.endSeq, found: header.firstSeq))
                }
                if header.firstTimestamp < lastTimestamp { return ScanDamage(offset: at, defect: .badTimestamps) }
                index.noteBatch(header, at: at, interval: configuration.indexIntervalBytes)
                lastTimestamp = header.lastTimestamp
                offset = at + Int64(header.totalLength)
            }
        }
    }

    /// Every valid batch after `offset`, in order (each found by checksum, continuing from the
    /// previous one or by searching for the next batch magic).
    private func validBatches(
        after offset: Int64,
        in scanner: inout SegmentScanner,
        minimumSeq: UInt64
    ) throws -> [(header: BatchHeader, offset: Int64)] {
        var found: [(header: BatchHeader, offset: Int64)] = []
        var position = offset
        while let (header, at) = try scanner.nextValidBatch(after: position, minimumSeq: found.last?.header.endSeq ?? minimumSeq) {
            found.append((header, at))
            var next = at + Int64(header.totalLength)
            while case .batch(let h, let a) = try scanner.batch(at: next, check: .checksum, expectedSeq: found.last!.header.endSeq) {
                found.append((h, a))
                next = a + Int64(h.totalLength)
            }
            position = next - 1
        }
        return found
    }

    // MARK: Quarantine

    private func corruption(_ damage: [LogDamage]) -> LogError {
        let list = damage.map(\.description).joined(separator: "; ")
        return LogError(
            .corruption,
            "the log in \(directory) is damaged before its tail: \(list). Nothing was changed; open it with repair to quarantine the damaged range, or restore the segment from a copy.",
            damage: damage
        )
    }

    /// The acknowledged seqs missing after `index` (rule 6), as damage of segment `segment`.
    private func missingAcknowledged(segment: String, index: SegmentIndex) -> LogDamage {
        var defect = "acknowledged records are missing from the end of the log"
        if let base = recoveryPointBase, SegmentName.segment(base) != segment, !fileSystem.fileExists(at: path(SegmentName.segment(base))) {
            defect += "; \(SegmentName.segment(base)), where the log ended when the recovery point was saved, is gone"
        }
        return LogDamage(
            segment: segment,
            offset: index.coveredLength,
            length: 0,
            firstSeq: index.endSeq,
            lastSeq: durableEnd.seq - 1,
            defect: defect
        )
    }

    /// The one-sentence refusal of rule 6; `cut` is what ends the segment when it ends inside a
    /// batch.
    private func lossError(_ damage: LogDamage, witness: String, cut: String? = nil) -> LogError {
        let ending =
            damage.segment == "(all)"
            ? "has no segment files left"
            : "ends at seq \(damage.firstSeq.map { $0 - 1 } ?? 0), at byte \(damage.offset) of \(damage.segment)\(cut.map { " (\($0))" } ?? "")"
        return LogError(
            .dataLoss,
            "the log in \(directory) \(ending), but \(damage.seqRange) had been acknowledged, as \(witness) shows: \(damage.defect); nothing was changed — start with --repair to record the loss and go on, or restore the missing data from a copy",
            damage: [damage]
        )
    }

    private func isRecordedGap(from expected: UInt64, to found: UInt64) -> Bool {
        found > expected && quarantine.contains { $0.firstLostSeq <= expected && $0.lastLostSeq >= found - 1 }
    }

    /// Under ``DamagePolicy/quarantine``, moves the damaged bytes into a side file and rewrites the
    /// segment without them; otherwise throws.
    private mutating func quarantineOrThrow(_ damage: LogDamage, base: UInt64, file: any LogFile, fileLength: Int64) throws {
        guard damagePolicy == .quarantine else { throw corruption([damage]) }
        let sideName = SegmentName.quarantine(base, offset: damage.offset)
        let damaged = try file.read(count: Int(damage.length), at: damage.offset)
        try replaceFileAtomically(damaged, named: sideName, in: directory, fileSystem: fileSystem)
        // The segment without the damaged range, written beside it and renamed over it.
        let rest = try file.read(count: Int(fileLength - damage.offset - damage.length), at: damage.offset + damage.length)
        let prefix = try file.read(count: Int(damage.offset), at: 0)
        try replaceFileAtomically(prefix + rest, named: SegmentName.segment(base), in: directory, fileSystem: fileSystem)
        try? fileSystem.removeFile(at: path(SegmentName.offsetIndex(base)))
        try? fileSystem.removeFile(at: path(SegmentName.timeIndex(base)))
        try record(
            QuarantineRecord(
                segment: damage.segment,
                offset: damage.offset,
                length: damage.length,
                sideFile: sideName,
                firstLostSeq: damage.firstSeq ?? 0,
                lastLostSeq: damage.lastSeq ?? UInt64.max,
                defect: damage.defect
            )
        )
    }

    private mutating func record(_ entry: QuarantineRecord) throws {
        quarantine.append(entry)
        report.quarantined.append(entry)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try replaceFileAtomically(Array(try encoder.encode(quarantine)), named: SegmentName.quarantineManifest, in: directory, fileSystem: fileSystem)
        try fileSystem.synchronizeDirectory(at: directory)
    }

    private func loadQuarantine() throws -> [QuarantineRecord] {
        let manifest = path(SegmentName.quarantineManifest)
        guard fileSystem.fileExists(at: manifest) else { return [] }
        let file = try fileSystem.openFile(at: manifest, mode: .readOnly)
        defer { try? file.close() }
        let bytes = try file.read(count: Int(try file.size()), at: 0)
        do {
            return try JSONDecoder().decode([QuarantineRecord].self, from: Data(bytes))
        } catch {
            throw LogError(.corruption, "\(manifest) cannot be read: \(error)")
        }
    }

    // MARK: Index files and recovery point

    private func writeIndexFiles(_ index: SegmentIndex, base: UInt64) throws {
        try writeSegmentIndexFiles(index, base: base, directory: directory, fileSystem: fileSystem)
        try fileSystem.synchronizeDirectory(at: directory)
    }

    private func loadRecoveryPoint() -> RecoveryPoint? {
        RecoveryPoint.load(from: directory, fileSystem: fileSystem)
    }

    /// The tail that was just checked may still be only in the page cache (the process died,
    /// not the machine): make it durable before promising, in a recovery point, that it is.
    private func saveRecoveryPoint(file: any LogFile, base: UInt64, index: SegmentIndex) throws {
        try file.synchronize()
        let point = RecoveryPoint(segmentBase: base, offset: index.coveredLength, endSeq: index.endSeq, lastTimestamp: index.lastTimestamp)
        try replaceFileAtomically(point.encode(), named: SegmentName.recoveryPoint, in: directory, fileSystem: fileSystem)
        try fileSystem.synchronizeDirectory(at: directory)
    }
}

/// Writes a sealed segment's two index files (each atomically). The caller synchronizes the
/// directory.
func writeSegmentIndexFiles(_ index: SegmentIndex, base: UInt64, directory: String, fileSystem: any LogFileSystem) throws {
    try replaceFileAtomically(
        SegmentIndexFile.encode(index, baseSeq: base, time: false),
        named: SegmentName.offsetIndex(base),
        in: directory,
        fileSystem: fileSystem
    )
    try replaceFileAtomically(
        SegmentIndexFile.encode(index, baseSeq: base, time: true),
        named: SegmentName.timeIndex(base),
        in: directory,
        fileSystem: fileSystem
    )
}
