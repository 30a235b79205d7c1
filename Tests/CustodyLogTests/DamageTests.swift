import CustodyLog
import Foundation
import NIOCore
import Testing

@Suite struct DamageTests {
    /// Writes `appends` single-record appends, each its own batch; returns the batch offsets of
    /// the last segment (from the batch headers, via inspect's sizes) and the payloads.
    static func writeLog(_ directory: String, appends: Int, configuration: LogConfiguration = LogConfiguration()) async throws -> [String] {
        let log = try await openLog(directory: directory, configuration: configuration)
        var texts: [String] = []
        for i in 0..<appends {
            let text = "record \(i) " + String(repeating: "payload-\(i % 10) ", count: 3 + i % 5)
            texts.append(text)
            _ = try await log.append(ByteBuffer(string: text))
        }
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
            offset += 48 + stored
        }
        return offsets
    }

    /// R2: the last segment cut at every byte of its last batches opens, is cut back to exactly the
    /// last whole batch, says what was cut, and keeps every batch before the cut.
    @Test func tornTailSweepOverEveryByteOfTheLastBatches() async throws {
        let original = TemporaryDirectory("torn-original")
        defer { original.remove() }
        let texts = try await Self.writeLog(original.path, appends: 12)
        let segment = try original.segments().last!
        let offsets = try Self.batchOffsets(original.file(segment))
        let length = try fileSize(original.file(segment))
        #expect(offsets.count == 12)
        let sweepStart = offsets[offsets.count - 3]
        for cut in sweepStart..<length {
            let directory = TemporaryDirectory("torn")
            defer { directory.remove() }
            try copyDirectory(original.path, to: directory.path)
            try truncateFile(directory.file(segment), to: cut)
            // The last batch starting at or before the cut survives only if it ends by the cut.
            let whole = offsets.indices.filter { i in
                let end = i + 1 < offsets.count ? offsets[i + 1] : length
                return end <= cut
            }
            let keptEnd = whole.last.map { $0 + 1 < offsets.count ? offsets[$0 + 1] : length } ?? 0
            let log = try await openLog(directory: directory.path)
            let report = log.recoveryReport
            if cut == keptEnd {
                #expect(report.tailCuts.isEmpty, "cut at \(cut)")
            } else {
                #expect(report.tailCuts.count == 1, "cut at \(cut)")
                #expect(report.tailCuts.first?.offset == Int64(keptEnd), "cut at \(cut)")
                #expect(report.tailCuts.first?.bytesCut == Int64(cut - keptEnd), "cut at \(cut)")
                // The log was closed cleanly, so the cut reached acknowledged data: said so.
                #expect(report.tailCuts.first?.reachedAcknowledgedData == true, "cut at \(cut)")
            }
            let records = try await readAll(log)
            #expect(records.map(\.payload.text) == Array(texts.prefix(whole.count)), "cut at \(cut)")
            #expect(try await log.append(ByteBuffer(string: "next")).firstSeq == UInt64(whole.count + 1), "cut at \(cut)")
            await log.close()
            #expect(try fileSize(directory.file(segment)) > keptEnd)
            #expect(try LogDirectory(path: directory.path).verify().isClean, "cut at \(cut)")
        }
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
