import CustodyLog
import CustodyLogTesting
import Foundation
import NIOCore
import Testing

@Suite struct RoundTripTests {
    @Test func appendAndReadBackAcrossReopen() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let log = try await openLog(directory: directory.path)
        let first = try await log.append(payloads(["one", "two", "three"]))
        #expect(first.seqs == 1...3)
        let second = try await log.append(ByteBuffer(string: "four"))
        #expect(second.seqs == 4...4)
        #expect(second.timestamp >= first.timestamp)
        #expect(try await readAll(log).map(\.payload.text) == ["one", "two", "three", "four"])
        #expect(try await readAll(log).map(\.seq) == [1, 2, 3, 4])
        await log.close()

        let reopened = try await openLog(directory: directory.path)
        #expect(reopened.recoveryReport.endSeq == 5)
        #expect(!reopened.recoveryReport.foundDamage)
        let records = try await readAll(reopened)
        #expect(records.map(\.payload.text) == ["one", "two", "three", "four"])
        #expect(records[0].timestamp == first.timestamp && records[3].timestamp == second.timestamp)
        #expect(try await reopened.append(ByteBuffer(string: "five")).seqs == 5...5)
        await reopened.close()
        #expect(try LogDirectory(path: directory.path).verify().isClean)
    }

    /// Scattered reads of a few records from compressed batches of records of very different
    /// sizes (small first, large first, mixed) return exactly what reading the whole log returns.
    @Test func scatteredReadsOfCompressedBatchesMatchWholeReads() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let log = try await openLog(directory: directory.path)
        var random = SplitMix64(seed: 7)
        for batch in 0..<40 {
            // Compressible records; in some batches small ones first and large ones last, in
            // others the other way round.
            let sizes = (0..<100).map { index -> Int in
                switch batch % 3 {
                case 0: return 20 + Int(random.next() % 200)
                case 1: return index < 50 ? 12 : 1_500 + Int(random.next() % 500)
                default: return index < 50 ? 1_500 + Int(random.next() % 500) : 12
                }
            }
            let payloads = sizes.enumerated().map { index, size in
                ByteBuffer(string: String(repeating: "span \(batch)-\(index) source=data-factory ", count: size / 40 + 1).prefix(size).description)
            }
            _ = try await log.append(payloads)
        }
        let all = try await readAll(log)
        #expect(all.count == 4_000)
        for _ in 0..<400 {
            let count = 1 + Int(random.next() % 6)
            let seqs = (0..<count).map { _ in 1 + random.next() % 4_000 }
            let records = try await log.read(seqs: seqs)
            let expected = Set(seqs).sorted().map { all[Int($0) - 1] }
            #expect(records.map(\.seq) == expected.map(\.seq))
            #expect(records.map(\.payload) == expected.map(\.payload))
            #expect(records.map(\.timestamp) == expected.map(\.timestamp))
        }
        await log.close()
    }

    @Test func emptyAndOversizedAppendsAreRefusedAndAppendNothing() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let log = try await openLog(directory: directory.path)
        await #expect(throws: LogError.self) { try await log.append([]) }
        let big = ByteBuffer(repeating: 7, count: (16 << 20) + 1)
        do {
            _ = try await log.append(big)
            Issue.record("an oversized record was accepted")
        } catch let error as LogError {
            #expect(error.code == .invalidArgument)
        }
        #expect(await log.lastSeq == 0)
        await log.close()
        await #expect(throws: LogError.self) { try await log.append(ByteBuffer(string: "late")) }
    }

    @Test func compressibleRecordsAreStoredCompressedAndIncompressibleOnesAsTheyAre() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let log = try await openLog(directory: directory.path)
        var random = SplitMix64(seed: 7)
        let spans = (0..<2000).map { SamplePayloads.span($0, size: 256, random: &random) }
        _ = try await log.append(spans)
        let noise = (0..<64).map { _ in ByteBuffer(bytes: (0..<512).map { _ in UInt8(truncatingIfNeeded: random.next()) }) }
        _ = try await log.append(noise)
        let records = try await readAll(log)
        #expect(records.map(\.payload) == spans + noise)
        await log.close()
        let inspection = try LogDirectory(path: directory.path).inspect()
        let spanBytes = spans.reduce(0) { $0 + $1.readableBytes }
        // The span JSON compresses several times; the noise does not, and costs only framing.
        // Two batches, each a 48-byte header and a 32-byte chain value.
        #expect(inspection.bytes < Int64(spanBytes / 3 + 64 * 512 + 64 * 12 + 2 * (48 + 32) + 100))
        #expect(inspection.records == 2064)
    }

    /// Millions of records across many segments, read back whole and from arbitrary seqs.
    @Test func millionsOfRecordsAcrossManySegments() async throws {
        let directory = TemporaryDirectory("millions")
        defer { directory.remove() }
        // Half-MiB segments: how well the records compress depends on how appends interleave, and
        // ~20 segments' worth leaves no doubt that the test crosses many of them.
        let configuration = LogConfiguration(fsync: .never, segmentBytes: 1 << 19, batchBytes: 64 << 10)
        let log = try await openLog(directory: directory.path, configuration: configuration)
        let appenders = 8
        let appendsPerAppender = 250
        let recordsPerAppend = 1000  // 8 × 250 × 1000 = 2,000,000 records
        // Each record says who appended it and its number, so its position can be checked.
        let receipts = try await withThrowingTaskGroup(of: [(AppendReceipt, Int, Int)].self) { group in
            for appender in 0..<appenders {
                group.addTask {
                    var receipts: [(AppendReceipt, Int, Int)] = []
                    for call in 0..<appendsPerAppender {
                        let start = call * recordsPerAppend
                        let batch = (start..<(start + recordsPerAppend)).map { ByteBuffer(string: "a\(appender)-\($0)") }
                        receipts.append((try await log.append(batch), appender, start))
                    }
                    return receipts
                }
            }
            var all: [(AppendReceipt, Int, Int)] = []
            for try await receipts in group { all.append(contentsOf: receipts) }
            return all
        }
        let total = appenders * appendsPerAppender * recordsPerAppend
        #expect(await log.lastSeq == UInt64(total))
        var expected = [String](repeating: "", count: total + 1)
        for (receipt, appender, start) in receipts {
            for (i, seq) in receipt.seqs.enumerated() { expected[Int(seq)] = "a\(appender)-\(start + i)" }
        }
        await log.close()

        let reopened = try await openLog(directory: directory.path, configuration: configuration)
        let status = await reopened.status()
        #expect(status.segments.count > 10)
        var next: UInt64 = 1
        var seen = 0
        while true {
            let batch = try await reopened.read(from: next, maxRecords: 100_000)
            guard let last = batch.last else { break }
            for record in batch {
                #expect(record.seq == next)
                if record.payload.text != expected[Int(record.seq)] {
                    Issue.record("seq \(record.seq) holds \(record.payload.text), expected \(expected[Int(record.seq)])")
                    break
                }
                next += 1
            }
            seen += batch.count
            next = last.seq + 1
        }
        #expect(seen == total)
        var random = SplitMix64(seed: 99)
        for _ in 0..<500 {
            let seq = random.next(upperBound: UInt64(total)) + 1
            let records = try await reopened.read(from: seq, maxRecords: 1)
            #expect(records.first?.seq == seq)
            #expect(records.first?.payload.text == expected[Int(seq)])
        }
        #expect(try await reopened.read(from: UInt64(total) + 1).isEmpty)
        await reopened.close()
        let verification = try LogDirectory(path: directory.path).verify()
        #expect(verification.isClean)
        #expect(verification.records == UInt64(total))
    }

    @Test func indexFilesAreRebuiltWhenMissingOrStale() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let configuration = LogConfiguration(segmentBytes: 16 << 10)
        let log = try await openLog(directory: directory.path, configuration: configuration)
        var random = SplitMix64(seed: 3)
        for _ in 0..<200 { _ = try await log.append(ByteBuffer(bytes: (0..<300).map { _ in UInt8(truncatingIfNeeded: random.next()) })) }
        await log.close()
        let segments = try directory.segments()
        #expect(segments.count > 2)
        let first = String(segments[0].dropLast(4))
        try FileManager.default.removeItem(atPath: directory.file(first + ".index"))
        // A stale time index: describes a different length.
        try truncateFile(directory.file(String(segments[1].dropLast(4)) + ".timeindex"), to: 20)

        let reopened = try await openLog(directory: directory.path, configuration: configuration)
        #expect(Set(reopened.recoveryReport.indexesRebuilt) == [segments[0], segments[1]])
        #expect(try await readAll(reopened).count == 200)
        await reopened.close()
        #expect(FileManager.default.fileExists(atPath: directory.file(first + ".index")))
        #expect(try LogDirectory(path: directory.path).verify().isClean)
    }

    @Test func timeIndexFindsTheFirstRecordAtOrAfterAnInstant() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let configuration = LogConfiguration(segmentBytes: 4096, indexIntervalBytes: 256)
        let log = try await openLog(directory: directory.path, configuration: configuration)
        // Timestamps 1000, 2000, … in batches of 3 records (same timestamp per append).
        for i in 1...300 {
            _ = try await log.append(payloads(["r\(i)a", "r\(i)b", "r\(i)c"]), timestamp: Int64(i) * 1000)
        }
        #expect(await log.status().segments.count > 3)
        #expect(try await log.firstSeq(atOrAfter: 0) == 1)
        #expect(try await log.firstSeq(atOrAfter: 1000) == 1)
        #expect(try await log.firstSeq(atOrAfter: 1001) == 4)
        #expect(try await log.firstSeq(atOrAfter: 150_000) == 448)
        #expect(try await log.firstSeq(atOrAfter: 150_500) == 451)
        #expect(try await log.firstSeq(atOrAfter: 300_000) == 898)
        #expect(try await log.firstSeq(atOrAfter: 300_001) == 901)
        // A timestamp earlier than the last one is raised to it: time never goes backwards.
        let receipt = try await log.append(ByteBuffer(string: "late"), timestamp: 5)
        #expect(receipt.timestamp == 300_000)
        await log.close()
    }

    /// However large the configured batch size, batches stay readable (under 64 MiB).
    @Test func hugeBatchSettingsStillWriteReadableBatches() async throws {
        let directory = TemporaryDirectory("huge-batches")
        defer { directory.remove() }
        let log = try await openLog(directory: directory.path, configuration: LogConfiguration(fsync: .never, batchBytes: 1 << 30))
        let records = (0..<5).map { ByteBuffer(repeating: UInt8($0 + 1), count: 15 << 20) }
        _ = try await log.append(records)
        #expect(try await readAll(log).map(\.payload) == records)
        await log.close()
        let verification = try LogDirectory(path: directory.path).verify()
        #expect(verification.isClean)
        #expect(verification.batches >= 2)
    }

    @Test func aSecondOpenOfTheSameDirectoryIsRefused() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let log = try await openLog(directory: directory.path)
        do {
            _ = try await openLog(directory: directory.path)
            Issue.record("a second open succeeded")
        } catch let error as LogError {
            #expect(error.code == .directoryLocked)
        }
        await log.close()
        let again = try await openLog(directory: directory.path)
        await again.close()
    }
}
