import CustodyLog
import CustodyLogTesting
import Foundation
import NIOCore
import Testing

@Suite struct DamageTests {
    /// Writes `appends` single-record appends, each its own batch, and closes the log; returns the
    /// payloads. With `crashCopy`, the directory is first copied there while the log is still
    /// open: what a `kill -9` leaves (every byte written, the recovery point as saved when the log
    /// opened).
    static func writeLog(
        _ directory: String,
        appends: Int,
        configuration: LogConfiguration = LogConfiguration(),
        crashCopy: String? = nil
    ) async throws -> [String] {
        let log = try await openLog(directory: directory, configuration: configuration)
        var texts: [String] = []
        for i in 0..<appends {
            let text = "record \(i) " + String(repeating: "payload-\(i % 10) ", count: 3 + i % 5)
            texts.append(text)
            _ = try await log.append(ByteBuffer(string: text))
        }
        if let crashCopy { try copyDirectory(directory, to: crashCopy) }
        await log.close()
        return texts
    }

    /// Byte offsets where each batch of a segment starts, and the file's length.
    static func batchOffsets(_ path: String) throws -> [Int] {
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        var offsets: [Int] = []
        var offset = 0
        while offset + 48 <= bytes.count {
            offsets.append(offset)
            let stored = bytes[offset + 40..<offset + 44].withUnsafeBytes { Int(UInt32(littleEndian: $0.loadUnaligned(as: UInt32.self))) }
            // A chained batch (format version 2) ends with its 32-byte chain value.
            let trailer = bytes[offset + 4] >= 2 ? 32 : 0
            offset += 48 + stored + trailer
        }
        return offsets
    }

    /// Which batches of a segment with batches at `offsets` (file `length` bytes) are whole after
    /// a cut at `cut`, and where the last whole one ends.
    static func wholeBatches(_ offsets: [Int], length: Int, cut: Int) -> (count: Int, end: Int) {
        let whole = offsets.indices.filter { i in (i + 1 < offsets.count ? offsets[i + 1] : length) <= cut }
        return (whole.count, whole.last.map { $0 + 1 < offsets.count ? offsets[$0 + 1] : length } ?? 0)
    }

    /// R2: a tail that was never acknowledged as far as anything durable knows — the process died
    /// after writing it (no clean shutdown, no recovery point past it) — cut at every byte of its
    /// last batches: the log opens, is cut back to exactly the last whole batch, says what was
    /// cut, keeps every batch before the cut, and goes on with the next seq.
    @Test func aTornTailThatWasNeverAcknowledgedIsCut() async throws {
        let written = TemporaryDirectory("torn-written")
        let original = TemporaryDirectory("torn-original")
        defer {
            written.remove()
            original.remove()
        }
        let texts = try await Self.writeLog(written.path, appends: 12, crashCopy: original.path)
        let segment = try original.segments().last!
        let offsets = try Self.batchOffsets(original.file(segment))
        let length = try fileSize(original.file(segment))
        #expect(offsets.count == 12)
        for cut in offsets[offsets.count - 3]..<length {
            let directory = TemporaryDirectory("torn")
            defer { directory.remove() }
            try copyDirectory(original.path, to: directory.path)
            try truncateFile(directory.file(segment), to: cut)
            let (whole, keptEnd) = Self.wholeBatches(offsets, length: length, cut: cut)
            let log = try await openLog(directory: directory.path)
            let report = log.recoveryReport
            if cut == keptEnd {
                #expect(report.tailCuts.isEmpty, "cut at \(cut)")
            } else {
                #expect(report.tailCuts.count == 1, "cut at \(cut)")
                #expect(report.tailCuts.first?.offset == Int64(keptEnd), "cut at \(cut)")
                #expect(report.tailCuts.first?.bytesCut == Int64(cut - keptEnd), "cut at \(cut)")
                #expect(report.tailCuts.first?.reachedAcknowledgedData == false, "cut at \(cut)")
            }
            #expect(report.quarantined.isEmpty && log.recordedLosses.isEmpty, "cut at \(cut)")
            let records = try await readAll(log)
            #expect(records.map(\.payload.text) == Array(texts.prefix(whole)), "cut at \(cut)")
            #expect(try await log.append(ByteBuffer(string: "next")).firstSeq == UInt64(whole + 1), "cut at \(cut)")
            await log.close()
            #expect(try fileSize(directory.file(segment)) > keptEnd)
            #expect(try LogDirectory(path: directory.path).verify().isClean, "cut at \(cut)")
        }
    }

    /// R12: the same cuts after a clean shutdown reach records known to be durable (the recovery
    /// point saved on close says the log reached seq 12): a plain open refuses, naming the segment
    /// and the missing seqs, and changes nothing; verify names the loss; repair records it and
    /// numbers new records after every seq ever acknowledged; verify is then clean, and later
    /// plain opens start.
    @Test func aCutIntoDurableDataRefusesUntilRepairedAndNoSeqIsReused() async throws {
        let original = TemporaryDirectory("cut-original")
        defer { original.remove() }
        let texts = try await Self.writeLog(original.path, appends: 12)
        let segment = try original.segments().last!
        let offsets = try Self.batchOffsets(original.file(segment))
        let length = try fileSize(original.file(segment))
        // Every batch boundary and every fifth byte between (each cut opens the log four times).
        let cuts = Set(stride(from: offsets[offsets.count - 3], to: length, by: 5)).union(offsets.suffix(3)).sorted()
        #expect(cuts.count > 40)
        for cut in cuts {
            let directory = TemporaryDirectory("cut")
            defer { directory.remove() }
            try copyDirectory(original.path, to: directory.path)
            try truncateFile(directory.file(segment), to: cut)
            let (whole, keptEnd) = Self.wholeBatches(offsets, length: length, cut: cut)
            let firstLost = UInt64(whole + 1)
            do {
                _ = try await openLog(directory: directory.path)
                Issue.record("a log cut into durable data opened (cut at \(cut))")
            } catch let error as LogError {
                #expect(error.code == .dataLoss, "cut at \(cut)")
                #expect(error.message.contains(segment) && error.message.contains("seqs \(firstLost)–12"), "\(error.message)")
                #expect(error.damage.first?.firstSeq == firstLost && error.damage.first?.lastSeq == 12, "cut at \(cut)")
            }
            #expect(try fileSize(directory.file(segment)) == cut, "a refused open changed the segment (cut at \(cut))")
            let verification = try LogDirectory(path: directory.path).verify()
            #expect(verification.damage.contains { $0.firstSeq == firstLost && $0.lastSeq == 12 }, "cut at \(cut)")

            let log = try await openLog(directory: directory.path, damagePolicy: .quarantine)
            #expect(log.recoveryReport.quarantined.map(\.firstLostSeq) == [firstLost], "cut at \(cut)")
            #expect(log.recordedLosses.map(\.lastLostSeq) == [12], "cut at \(cut)")
            if cut > keptEnd {
                // The cut bytes are kept in the side file the record names.
                let side = try #require(log.recordedLosses.first?.sideFile)
                #expect(try fileSize(directory.file(side)) == cut - keptEnd, "cut at \(cut)")
            }
            #expect(try await readAll(log).map(\.payload.text) == Array(texts.prefix(whole)), "cut at \(cut)")
            #expect(try await log.append(ByteBuffer(string: "next")).firstSeq == 13, "cut at \(cut)")
            await log.close()
            let repaired = try LogDirectory(path: directory.path).verify()
            #expect(repaired.isClean, "cut at \(cut): \(repaired.damage)")
            #expect(repaired.notes.contains { $0.contains("recorded loss: seqs \(firstLost)–12") }, "cut at \(cut)")
            let reopened = try await openLog(directory: directory.path)
            #expect(reopened.recordedLosses.count == 1)
            #expect(try await readAll(reopened).map(\.seq) == Array(1...UInt64(whole)) + [13], "cut at \(cut)")
            #expect(try await reopened.append(ByteBuffer(string: "after")).firstSeq == 14, "cut at \(cut)")
            await reopened.close()
        }
    }

    /// R12 without a clean shutdown: the recovery point knows nothing of the tail, but something
    /// else does (the projections had applied seq 12): that mark makes the same cut a loss.
    @Test func aCutBelowTheCallersAcknowledgedMarkIsALoss() async throws {
        let written = TemporaryDirectory("mark-written")
        let original = TemporaryDirectory("mark-original")
        defer {
            written.remove()
            original.remove()
        }
        _ = try await Self.writeLog(written.path, appends: 12, crashCopy: original.path)
        let segment = try original.segments().last!
        let offsets = try Self.batchOffsets(original.file(segment))
        let mark = AcknowledgedMark(seq: 12, witness: "the projections' checkpoint")
        for cut in [offsets[9], offsets[9] + 7, offsets[11] + 1] {
            let directory = TemporaryDirectory("mark")
            defer { directory.remove() }
            try copyDirectory(original.path, to: directory.path)
            try truncateFile(directory.file(segment), to: cut)
            let firstLost: UInt64 = cut > offsets[11] ? 12 : 10
            // Without the mark it is a torn tail; with it, a loss.
            do {
                _ = try await openLog(directory: directory.path, acknowledged: mark)
                Issue.record("opened below the acknowledged mark (cut at \(cut))")
            } catch let error as LogError {
                #expect(error.code == .dataLoss)
                #expect(error.message.contains("the projections' checkpoint") && error.message.contains("seqs \(firstLost)–12"), "\(error.message)")
            }
            #expect(!(try LogDirectory(path: directory.path).verify(acknowledged: mark).isClean))
            let log = try await openLog(directory: directory.path, damagePolicy: .quarantine, acknowledged: mark)
            #expect(log.recordedLosses.map { $0.firstLostSeq...$0.lastLostSeq } == [firstLost...12])
            #expect(try await log.append(ByteBuffer(string: "next")).firstSeq == 13)
            await log.close()
            #expect(try LogDirectory(path: directory.path).verify(acknowledged: mark).isClean)
        }
    }

    /// R12 across a segment boundary: the whole newest segment (and its index files) removed after
    /// a clean shutdown. The older segments are whole, so only the recovery point tells; the open
    /// refuses and names the missing segment's seqs; repair goes on after them.
    @Test func aRemovedNewestSegmentIsALoss() async throws {
        let directory = TemporaryDirectory("lost-segment")
        defer { directory.remove() }
        let log = try await openLog(directory: directory.path, configuration: LogConfiguration(segmentBytes: 4096))
        for i in 0..<200 { _ = try await log.append(ByteBuffer(string: "record \(i) " + String(repeating: "x", count: 60))) }
        await log.close()
        let segments = try directory.segments()
        #expect(segments.count >= 3)
        let newest = segments.last!
        let newestBase = UInt64(newest.prefix(20))!
        for name in try FileManager.default.contentsOfDirectory(atPath: directory.path) where name.hasPrefix(String(newest.prefix(20))) {
            try FileManager.default.removeItem(atPath: directory.file(name))
        }
        do {
            _ = try await openLog(directory: directory.path)
            Issue.record("opened with its newest segment gone")
        } catch let error as LogError {
            #expect(error.code == .dataLoss)
            #expect(error.message.contains("seqs \(newestBase)–200") && error.message.contains(newest), "\(error.message)")
        }
        #expect(!(try LogDirectory(path: directory.path).verify().isClean))
        let repaired = try await openLog(directory: directory.path, damagePolicy: .quarantine)
        #expect(repaired.recordedLosses.map { $0.firstLostSeq...$0.lastLostSeq } == [newestBase...200])
        #expect(try await readAll(repaired).last?.seq == newestBase - 1)
        #expect(try await repaired.append(ByteBuffer(string: "next")).firstSeq == 201)
        await repaired.close()
        #expect(try LogDirectory(path: directory.path).verify().isClean)
        let reopened = try await openLog(directory: directory.path)
        #expect(try await reopened.append(ByteBuffer(string: "after")).firstSeq == 202)
        await reopened.close()
    }

    /// R3: a flipped bit anywhere in a sealed segment is found by verify, which names the
    /// segment, a range holding the flipped byte, and the seqs of the damaged batch.
    @Test func verifyFindsEveryFlippedBitInSealedSegments() async throws {
        let directory = TemporaryDirectory("bitflip")
        defer { directory.remove() }
        _ = try await Self.writeLog(directory.path, appends: 60, configuration: LogConfiguration(segmentBytes: 2048))
        let segments = try directory.segments()
        #expect(segments.count >= 3)
        #expect(try LogDirectory(path: directory.path).verify().isClean)
        var random = SplitMix64(seed: 11)
        var flips = 0
        for segment in segments.dropLast() {
            let path = directory.file(segment)
            let length = try fileSize(path)
            let offsets = try Self.batchOffsets(path)
            // Every byte of the first batch (header and payload), and random bytes of the rest.
            var positions = Array(0..<(offsets.count > 1 ? offsets[1] : length))
            positions += (0..<40).map { _ in Int(random.next(upperBound: UInt64(length))) }
            for position in positions {
                let bit = Int(random.next(upperBound: 8))
                try flipBit(in: path, at: position, bit: bit)
                let verification = try LogDirectory(path: directory.path).verify()
                try flipBit(in: path, at: position, bit: bit)
                flips += 1
                let hit = verification.damage.first {
                    $0.segment == segment && $0.offset <= Int64(position) && Int64(position) < $0.offset + $0.length
                }
                guard let hit else {
                    Issue.record("a flipped bit at \(segment):\(position) was not found: \(verification.damage)")
                    continue
                }
                // The damaged batch's seqs are named.
                let batch = offsets.lastIndex { $0 <= position }!
                #expect(hit.offset == Int64(offsets[batch]))
                #expect(hit.firstSeq != nil && hit.lastSeq != nil && hit.firstSeq! <= hit.lastSeq!)
            }
        }
        #expect(flips > 100)
        #expect(try LogDirectory(path: directory.path).verify().isClean)
    }

    /// Damage before the tail (a sealed segment whose index must be rebuilt) stops the open with
    /// a precise error; repair quarantines exactly the damaged batch and reports the lost seqs.
    @Test func damageInASealedSegmentRefusesToOpenUntilRepaired() async throws {
        let directory = TemporaryDirectory("sealed-damage")
        defer { directory.remove() }
        let texts = try await Self.writeLog(directory.path, appends: 60, configuration: LogConfiguration(segmentBytes: 2048))
        let segments = try directory.segments()
        let damaged = segments[1]
        let offsets = try Self.batchOffsets(directory.file(damaged))
        let base = UInt64(damaged.dropLast(4))!
        // Damage the third batch's payload; remove the index so that opening scans the segment.
        try flipBit(in: directory.file(damaged), at: offsets[2] + 60)
        try FileManager.default.removeItem(atPath: directory.file(String(damaged.dropLast(4)) + ".index"))
        let lostSeq = base + 2

        do {
            _ = try await openLog(directory: directory.path)
            Issue.record("a damaged sealed segment opened")
        } catch let error as LogError {
            #expect(error.code == .corruption)
            #expect(error.damage.count == 1)
            #expect(error.damage.first?.segment == damaged)
            #expect(error.damage.first?.offset == Int64(offsets[2]))
            #expect(error.damage.first?.firstSeq == lostSeq && error.damage.first?.lastSeq == lostSeq)
            #expect(error.message.contains(damaged))
        }
        // Nothing was changed by the refused open.
        #expect(try Self.batchOffsets(directory.file(damaged)) == offsets)

        let log = try await openLog(directory: directory.path, damagePolicy: .quarantine)
        let quarantined = log.recoveryReport.quarantined
        #expect(quarantined.count == 1)
        #expect(quarantined.first?.firstLostSeq == lostSeq && quarantined.first?.lastLostSeq == lostSeq)
        #expect(quarantined.first?.length == Int64(offsets[3] - offsets[2]))
        let side = try #require(quarantined.first?.sideFile)
        #expect(try fileSize(directory.file(side)) == offsets[3] - offsets[2])
        let records = try await readAll(log)
        #expect(records.count == texts.count - 1)
        #expect(!records.contains { $0.seq == lostSeq })
        for record in records { #expect(record.payload.text == texts[Int(record.seq) - 1]) }
        #expect(try await log.read(from: lostSeq, maxRecords: 1).first?.seq == lostSeq + 1)
        await log.close()
        // The repaired log opens without repair, and verify calls it clean, noting the loss.
        let reopened = try await openLog(directory: directory.path)
        #expect(try await readAll(reopened).count == texts.count - 1)
        await reopened.close()
        let verification = try LogDirectory(path: directory.path).verify()
        #expect(verification.isClean, "\(verification.damage)")
        #expect(verification.notes.contains { $0.contains("quarantined") })
    }

    /// Damage to a batch header below the recovery point of the last segment, with valid batches
    /// after it, is not a torn tail: the open refuses.
    @Test func damageBelowTheRecoveryPointOfTheLastSegmentRefusesToOpen() async throws {
        let directory = TemporaryDirectory("tail-damage")
        defer { directory.remove() }
        _ = try await Self.writeLog(directory.path, appends: 20)
        let segment = try directory.segments().last!
        let offsets = try Self.batchOffsets(directory.file(segment))
        try flipBit(in: directory.file(segment), at: offsets[5] + 2)  // the magic of batch 6
        do {
            _ = try await openLog(directory: directory.path)
            Issue.record("the log opened over damaged acknowledged data")
        } catch let error as LogError {
            #expect(error.code == .corruption)
            #expect(error.damage.first?.offset == Int64(offsets[5]))
            #expect(error.damage.first?.firstSeq == 6 && error.damage.first?.lastSeq == 6)
        }
        let verification = try LogDirectory(path: directory.path).verify()
        #expect(verification.damage.count == 1)
        #expect(verification.damage.first?.offset == Int64(offsets[5]))
        // Repair quarantines exactly that batch; everything after it stays.
        let log = try await openLog(directory: directory.path, damagePolicy: .quarantine)
        #expect(log.recoveryReport.quarantined.map(\.firstLostSeq) == [6])
        #expect(log.recoveryReport.tailCuts.isEmpty)
        #expect(try await readAll(log).map(\.seq) == Array(1...5) + Array(7...20))
        #expect(try await log.append(ByteBuffer(string: "next")).firstSeq == 21)
        await log.close()
        #expect(try LogDirectory(path: directory.path).verify().isClean)
    }

    /// A flipped payload bit in the last segment, below the recovery point, is beyond what opening
    /// checks (it walks headers there); verify finds it, and repair quarantines it.
    @Test func payloadDamageInTheLastSegmentIsFoundByVerifyAndRepair() async throws {
        let directory = TemporaryDirectory("tail-payload")
        defer { directory.remove() }
        let texts = try await Self.writeLog(directory.path, appends: 20)
        let segment = try directory.segments().last!
        let offsets = try Self.batchOffsets(directory.file(segment))
        try flipBit(in: directory.file(segment), at: offsets[9] + 50, bit: 3)
        let verification = try LogDirectory(path: directory.path).verify()
        #expect(verification.damage.map(\.offset) == [Int64(offsets[9])])
        #expect(verification.damage.first?.firstSeq == 10 && verification.damage.first?.lastSeq == 10)
        let log = try await openLog(directory: directory.path, damagePolicy: .quarantine)
        #expect(log.recoveryReport.quarantined.map(\.firstLostSeq) == [10])
        let records = try await readAll(log)
        #expect(records.map(\.payload.text) == Array(texts[0..<9]) + Array(texts[10...]))
        await log.close()
    }
}
