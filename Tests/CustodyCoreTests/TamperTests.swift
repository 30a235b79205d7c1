import CustodyCore
import CustodyLog
import CustodyLogTesting
import Foundation
import NIOCore
import Testing

/// R10: someone who can write the data directory changes the record, as carefully as they can —
/// every CRC valid, seqs consecutive, the chain recomputed where that hides the change — and
/// `custody log verify` (``LogVerification``) must fail every time, naming the segment, the byte
/// offset and the seq; the untouched log passes. 100 random trials of each kind, each on a copy
/// of one multi-segment log with signed checkpoints.
@Suite(.serialized) struct TamperTests {
    static let trials = 100

    /// The log every trial copies: ~2,000 events in ~20 segments, a signed checkpoint every
    /// 25 appends, and the receipt of every append.
    final class Fixture: Sendable {
        let directory: TemporaryDirectory
        let key: SigningKey
        let receipts: [Receipt]
        let checkpoints: [LogCheckpoint]

        init(directory: TemporaryDirectory, key: SigningKey, receipts: [Receipt], checkpoints: [LogCheckpoint]) {
            self.directory = directory
            self.key = key
            self.receipts = receipts
            self.checkpoints = checkpoints
        }

        static func make() async throws -> Fixture {
            let directory = TemporaryDirectory("tamper-original")
            let key = SigningKey.generate()
            // fsync never: the fixture is built fast; it is closed (synchronized) before any trial.
            let log = try await openLog(directory: directory.path, configuration: LogConfiguration(fsync: .never, segmentBytes: 8 << 10))
            var generator = EventGenerator(random: SplitMix64(seed: 19))
            var random = SplitMix64(seed: 20)
            var receipts: [Receipt] = []
            var checkpoints: [LogCheckpoint] = []
            let types: [EventType] = [.span, .span, .span, .taskCreated, .taskStatusChanged, .followupSubmitted]
            for append in 1...600 {
                let count = 1 + Int(random.next(upperBound: 6))
                let bodies = (0..<count).map { _ in generator.body(types[Int(random.next(upperBound: UInt64(types.count)))]) }
                let receipt = try await log.append(bodies.map(EventCodec.encode))
                receipts.append(Receipt(receipt)!)
                if append % 25 == 0 {
                    let checkpoint = try LogCheckpoint(head: await log.chainHead, at: LogTime.now(), key: key)
                    _ = try await log.append([EventCodec.encode(.logCheckpoint(checkpoint))])
                    checkpoints.append(checkpoint)
                }
            }
            await log.close()
            return Fixture(directory: directory, key: key, receipts: receipts, checkpoints: checkpoints)
        }

        /// A copy to tamper with.
        func copy() throws -> TemporaryDirectory {
            let copy = TemporaryDirectory("tamper")
            try FileManager.default.removeItem(atPath: copy.path)
            try FileManager.default.copyItem(atPath: directory.path, toPath: copy.path)
            return copy
        }

        func verify(_ copy: TemporaryDirectory, receipts: [Receipt] = [], checkpoint: LogCheckpoint? = nil) throws -> LogVerification.Report {
            try LogVerification.verify(directory: copy.path, receipts: receipts, checkpoint: checkpoint, trustedKey: key.publicKey)
        }
    }

    /// Where a record is after the tampering.
    struct Place {
        var segment: String
        var offset: Int64
        var seq: UInt64
    }

    static func place(ofSeq seq: UInt64, in directory: String) throws -> Place? {
        for segment in try LogSurgery(directory: directory).segments() {
            for batch in segment.batches where batch.header.firstSeq <= seq && seq <= batch.header.lastSeq {
                return Place(segment: segment.name, offset: Int64(batch.offset), seq: seq)
            }
        }
        return nil
    }

    /// The report names `place` (segment, offset and a seq range holding its seq) in a damage
    /// entry whose defect says `what`.
    static func expectNamed(_ place: Place?, _ what: String, in report: LogVerification.Report, _ trial: Int) {
        #expect(!report.isClean, "trial \(trial): the tampered log passed")
        guard let place else {
            Issue.record("trial \(trial): the tampered place is gone")
            return
        }
        let named = report.log.damage.contains { damage in
            damage.segment == place.segment && damage.offset == place.offset && (damage.firstSeq ?? .max) <= place.seq
                && place.seq <= (damage.lastSeq ?? 0) && damage.defect.contains(what)
        }
        #expect(
            named,
            "trial \(trial): no damage names \(place.segment) byte \(place.offset) seq \(place.seq) (\(what)): \(report.log.damage.prefix(3))"
        )
    }

    @Test func theUntouchedLogPassesWithEveryReceiptAndCheckpoint() async throws {
        let fixture = try await Fixture.make()
        defer { fixture.directory.remove() }
        let copy = try fixture.copy()
        defer { copy.remove() }
        let report = try fixture.verify(copy, receipts: fixture.receipts, checkpoint: fixture.checkpoints.last)
        #expect(report.isClean, "\(report.log.damage.prefix(3))")
        #expect(report.log.segments > 10)
        #expect(report.checkpoints == fixture.checkpoints.count && report.validCheckpoints == fixture.checkpoints.count)
        #expect(report.log.claims.count == fixture.receipts.count + fixture.checkpoints.count + 1)
        #expect(report.log.claims.allSatisfy { $0.holds })
        #expect(report.log.chainStartSeq == 1)
    }

    /// One byte of one event changed, its batch re-encoded with a valid CRC: only the chain can
    /// tell, and it names the batch.
    @Test func anEditedEventWithItsCRCRecomputedIsFound() async throws {
        let fixture = try await Fixture.make()
        defer { fixture.directory.remove() }
        var random = SplitMix64(seed: 1)
        for trial in 0..<Self.trials {
            let copy = try fixture.copy()
            defer { copy.remove() }
            let surgery = LogSurgery(directory: copy.path)
            let segments = try surgery.segments()
            var segment = segments[Int(random.next(upperBound: UInt64(segments.count)))]
            let batchIndex = Int(random.next(upperBound: UInt64(segment.batches.count)))
            var batch = segment.batches[batchIndex]
            // An event that is not a checkpoint (a checkpoint's own check would catch it too).
            let candidates = batch.records.indices.filter { batch.records[$0].payload.getInteger(at: 1, as: UInt8.self) != 14 }
            guard let recordIndex = candidates.randomElement(using: &random) else { continue }
            var bytes = Array(batch.records[recordIndex].payload.readableBytesView)
            let at = 2 + Int(random.next(upperBound: UInt64(bytes.count - 2)))
            bytes[at] ^= UInt8(1 << random.next(upperBound: 8))
            batch.records[recordIndex].payload = ByteBuffer(bytes: bytes)
            segment.batches[batchIndex] = batch
            let written = try surgery.write(segment)
            let seq = batch.header.firstSeq + UInt64(recordIndex)
            let report = try fixture.verify(copy)
            Self.expectNamed(
                Place(segment: segment.name, offset: Int64(written.batches[batchIndex].offset), seq: seq),
                "hash chain mismatch",
                in: report,
                trial
            )
            // Every CRC is valid: nothing but the chain found it.
            #expect(report.log.damage.allSatisfy { $0.defect.contains("hash chain") }, "trial \(trial): \(report.log.damage.prefix(2))")
        }
    }

    /// A batch removed and every later seq moved down to close the gap (segments renamed).
    @Test func aRemovedBatchWithTheSeqsRewrittenIsFound() async throws {
        let fixture = try await Fixture.make()
        defer { fixture.directory.remove() }
        var random = SplitMix64(seed: 2)
        for trial in 0..<Self.trials {
            let copy = try fixture.copy()
            defer { copy.remove() }
            let surgery = LogSurgery(directory: copy.path)
            let segments = try surgery.segments()
            var segmentIndex = Int(random.next(upperBound: UInt64(segments.count)))
            while segments[segmentIndex].batches.count < 2 || (segmentIndex == segments.count - 1 && segments[segmentIndex].batches.count < 3) {
                segmentIndex = Int(random.next(upperBound: UInt64(segments.count)))
            }
            var segment = segments[segmentIndex]
            // Not the last batch of the log: something must follow it.
            let last = segmentIndex == segments.count - 1 ? segment.batches.count - 1 : segment.batches.count
            let batchIndex = Int(random.next(upperBound: UInt64(last)))
            let removedFirstSeq = segment.batches[batchIndex].header.firstSeq
            segment.batches.remove(at: batchIndex)
            try surgery.write(segment)
            try surgery.renumber()
            let report = try fixture.verify(copy)
            Self.expectNamed(try Self.place(ofSeq: removedFirstSeq, in: copy.path), "hash chain mismatch", in: report, trial)
        }
    }

    /// Two neighbouring batches swapped, seqs and timestamps rewritten so that both still look
    /// in order.
    @Test func twoSwappedBatchesAreFound() async throws {
        let fixture = try await Fixture.make()
        defer { fixture.directory.remove() }
        var random = SplitMix64(seed: 3)
        for trial in 0..<Self.trials {
            let copy = try fixture.copy()
            defer { copy.remove() }
            let surgery = LogSurgery(directory: copy.path)
            let segments = try surgery.segments().filter { $0.batches.count >= 2 }
            var segment = segments[Int(random.next(upperBound: UInt64(segments.count)))]
            let first = Int(random.next(upperBound: UInt64(segment.batches.count - 1)))
            var a = segment.batches[first]
            var b = segment.batches[first + 1]
            let start = a.header.firstSeq
            let stamp = a.header.firstTimestamp
            b.header.firstSeq = start
            a.header.firstSeq = start + UInt64(b.header.recordCount)
            for index in a.records.indices { a.records[index].timestamp = stamp }
            for index in b.records.indices { b.records[index].timestamp = stamp }
            segment.batches[first] = b
            segment.batches[first + 1] = a
            let written = try surgery.write(segment)
            let report = try fixture.verify(copy)
            Self.expectNamed(
                Place(segment: segment.name, offset: Int64(written.batches[first].offset), seq: start),
                "hash chain mismatch",
                in: report,
                trial
            )
        }
    }

    /// A whole sealed segment deleted (index files too).
    @Test func aRemovedSealedSegmentIsFound() async throws {
        let fixture = try await Fixture.make()
        defer { fixture.directory.remove() }
        var random = SplitMix64(seed: 4)
        for trial in 0..<Self.trials {
            let copy = try fixture.copy()
            defer { copy.remove() }
            let surgery = LogSurgery(directory: copy.path)
            let segments = try surgery.segments()
            let removed = Int(random.next(upperBound: UInt64(segments.count - 1)))
            try surgery.remove(segmentNamed: segments[removed].name)
            let report = try fixture.verify(copy)
            let next = segments[removed + 1]
            #expect(!report.isClean, "trial \(trial)")
            let named = report.log.damage.contains { damage in
                damage.segment == next.name && damage.offset == 0 && damage.firstSeq == segments[removed].baseSeq
                    && damage.lastSeq == next.baseSeq - 1 && damage.defect.contains("seqs missing")
            }
            #expect(named, "trial \(trial): \(report.log.damage.prefix(3))")
        }
    }

    /// The newest segments deleted (the recovery point too, so nothing in the directory remembers
    /// them): a receipt or a checkpoint saved before the cut still catches it.
    @Test func aLogCutBackBehindASavedCheckpointOrReceiptIsFound() async throws {
        let fixture = try await Fixture.make()
        defer { fixture.directory.remove() }
        var random = SplitMix64(seed: 5)
        for trial in 0..<Self.trials {
            let copy = try fixture.copy()
            defer { copy.remove() }
            let surgery = LogSurgery(directory: copy.path)
            let segments = try surgery.segments()
            let keep = segments.count - 1 - Int(random.next(upperBound: 3))
            for segment in segments[keep...] { try surgery.remove(segmentNamed: segment.name) }
            try? FileManager.default.removeItem(atPath: copy.file("recovery-point"))
            let end = segments[keep].baseSeq
            let useCheckpoint = trial % 2 == 0
            let checkpoint = useCheckpoint ? fixture.checkpoints.last { $0.seq >= end } : nil
            let receipt = checkpoint == nil ? fixture.receipts.filter { $0.seq >= end }.randomElement(using: &random) : nil
            let report = try fixture.verify(copy, receipts: receipt.map { [$0] } ?? [], checkpoint: checkpoint)
            let claimed = checkpoint?.seq ?? receipt!.seq
            #expect(!report.isClean, "trial \(trial)")
            let named = report.log.damage.contains { damage in
                damage.segment == segments[keep - 1].name && damage.firstSeq == claimed && damage.defect.contains("the log ends at seq \(end - 1)")
            }
            #expect(named, "trial \(trial): \(report.log.damage.prefix(3))")
            // And the cut log is otherwise whole: without the claim it passes, which is why the
            // claim is needed.
            #expect(try fixture.verify(copy).isClean, "trial \(trial)")
        }
    }

    /// The checkpoint records of the log, with where they are.
    static func checkpointRecords(in directory: String) throws -> [(segment: Int, batch: Int, record: Int, seq: UInt64)] {
        var found: [(Int, Int, Int, UInt64)] = []
        for (s, segment) in try LogSurgery(directory: directory).segments().enumerated() {
            for (b, batch) in segment.batches.enumerated() {
                for (r, record) in batch.records.enumerated() where record.payload.getInteger(at: 1, as: UInt8.self) == 14 {
                    found.append((s, b, r, batch.header.firstSeq + UInt64(r)))
                }
            }
        }
        return found
    }

    /// One byte of a checkpoint's signature changed, and the whole chain recomputed so that
    /// only the signature can tell.
    @Test func anAlteredCheckpointSignatureIsFound() async throws {
        let fixture = try await Fixture.make()
        defer { fixture.directory.remove() }
        var random = SplitMix64(seed: 6)
        for trial in 0..<Self.trials {
            let copy = try fixture.copy()
            defer { copy.remove() }
            let surgery = LogSurgery(directory: copy.path)
            let records = try Self.checkpointRecords(in: copy.path)
            let target = records[Int(random.next(upperBound: UInt64(records.count)))]
            var segment = try surgery.segments()[target.segment]
            var bytes = Array(segment.batches[target.batch].records[target.record].payload.readableBytesView)
            bytes[bytes.count - 1 - Int(random.next(upperBound: 64))] ^= UInt8(1 << random.next(upperBound: 8))
            segment.batches[target.batch].records[target.record].payload = ByteBuffer(bytes: bytes)
            try surgery.write(segment)
            try surgery.rechain()
            let report = try fixture.verify(copy)
            Self.expectNamed(try Self.place(ofSeq: target.seq, in: copy.path), "signature", in: report, trial)
        }
    }

    /// A checkpoint re-signed with another key (a valid signature, by a key that is not the
    /// server's), the chain recomputed.
    @Test func aCheckpointResignedWithAnotherKeyIsFound() async throws {
        let fixture = try await Fixture.make()
        defer { fixture.directory.remove() }
        var random = SplitMix64(seed: 7)
        let forger = SigningKey.generate()
        for trial in 0..<Self.trials {
            let copy = try fixture.copy()
            defer { copy.remove() }
            let surgery = LogSurgery(directory: copy.path)
            let records = try Self.checkpointRecords(in: copy.path)
            let target = records[Int(random.next(upperBound: UInt64(records.count)))]
            var segment = try surgery.segments()[target.segment]
            guard case .logCheckpoint(let original) = try EventCodec.decode(segment.batches[target.batch].records[target.record].payload) else {
                Issue.record("not a checkpoint")
                continue
            }
            let forged = try LogCheckpoint(head: ChainHead(seq: original.seq, chain: original.chain), at: original.at, key: forger)
            #expect(forged.hasValidSignature)
            segment.batches[target.batch].records[target.record].payload = EventCodec.encode(.logCheckpoint(forged))
            try surgery.write(segment)
            try surgery.rechain()
            let report = try fixture.verify(copy)
            Self.expectNamed(try Self.place(ofSeq: target.seq, in: copy.path), "re-signed", in: report, trial)
        }
    }
}
