import CustodyLogTesting
import Foundation
import NIOCore
import Testing

@testable import CustodyLog

/// Segment dictionaries (docs/log-format.md, "Segment dictionaries"): small batches compressed
/// against the log's recent data, the dictionary durable before any batch uses it, readable after
/// reopening, by scattered reads, by verify and in a backup; a dictionary that cannot be written
/// or that is damaged never costs an acknowledged record silently.
@Suite struct SegmentDictionaryTests {
    /// Span-like records, a few per append: what `custody demo`'s small group commits hold.
    static func record(_ index: Int, random: inout SplitMix64) -> String {
        let sources = ["agent-factory", "data-factory", "orchestrator", "code-factory"]
        let stages = ["request_received", "processing", "response_sent", "before_rpc", "after_rpc"]
        return """
            {"trace_id":"\(String(random.next(), radix: 16))","source":"\(sources[index % 4])","stage":"\(stages[index % 5])",\
            "operation":"POST /api/tasks","duration_ms":\(random.next() % 900),"details":{"status":200,"attempt":\(index % 3)}}
            """
    }

    /// Appends `appends` appends of 1–4 records each; returns every record in seq order.
    static func fill(_ log: SegmentLog, appends: Int, seed: UInt64 = 1) async throws -> [String] {
        var random = SplitMix64(seed: seed)
        var written: [String] = []
        for index in 0..<appends {
            let texts = (0...(index % 4)).map { Self.record(index * 4 + $0, random: &random) }
            _ = try await log.append(payloads(texts))
            written += texts
        }
        return written
    }

    /// The codecs of every batch of every segment in `directory`, read with each segment's own
    /// dictionary file.
    static func codecs(in directory: TemporaryDirectory) throws -> [BatchHeader.Codec] {
        try LogSurgery(directory: directory.path).segments().flatMap { $0.batches.map(\.header.codec) }
    }

    static func dictionaryFiles(in directory: TemporaryDirectory) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".dict") }.sorted()
    }

    @Test func smallBatchesAreCompressedAgainstRecentDataAndReadBack() async throws {
        let withDictionary = TemporaryDirectory("dictionary")
        let without = TemporaryDirectory("no-dictionary")
        defer {
            withDictionary.remove()
            without.remove()
        }
        var configuration = LogConfiguration(segmentBytes: 128 << 10)
        let log = try await openLog(directory: withDictionary.path, configuration: configuration)
        let written = try await Self.fill(log, appends: 3_000)
        #expect(try await readAll(log).map(\.payload.text) == written)
        // Scattered reads of single records out of codec 2 batches.
        var random = SplitMix64(seed: 9)
        for _ in 0..<200 {
            let seqs = (0..<3).map { _ in 1 + random.next() % UInt64(written.count) }
            #expect(try await log.read(seqs: seqs).map(\.payload.text) == Set(seqs).sorted().map { written[Int($0) - 1] })
        }
        let statistics = await log.status().statistics
        await log.close()

        configuration.compressionDictionary = false
        let plain = try await openLog(directory: without.path, configuration: configuration)
        _ = try await Self.fill(plain, appends: 3_000)
        let plainStatistics = await plain.status().statistics
        await plain.close()

        // Every segment has its dictionary, most batches use it, and the log is much smaller.
        let segments = try withDictionary.segments()
        #expect(segments.count >= 3)
        #expect(try Self.dictionaryFiles(in: withDictionary) == segments.map { String($0.dropLast(4)) + ".dict" })
        #expect(statistics.dictionariesWritten == segments.count)
        let codecs = try Self.codecs(in: withDictionary)
        #expect(codecs.count == statistics.batchesWritten)
        #expect(codecs.filter { $0 == .lz4Dictionary }.count > codecs.count * 9 / 10)
        #expect(try Self.codecs(in: without).allSatisfy { $0 != .lz4Dictionary })
        #expect(try Self.dictionaryFiles(in: without).isEmpty)
        #expect(statistics.uncompressedBytes == plainStatistics.uncompressedBytes)
        #expect(
            Double(statistics.bytesWritten) < Double(plainStatistics.bytesWritten) * 0.75,
            "\(statistics.bytesWritten) vs \(plainStatistics.bytesWritten)"
        )

        // Reopened (the active segment's dictionary taken up again), appended to, verified.
        let reopened = try await openLog(directory: withDictionary.path)
        #expect(try await readAll(reopened).map(\.payload.text) == written)
        let more = try await Self.fill(reopened, appends: 200, seed: 2)
        #expect(try await readAll(reopened).map(\.payload.text) == written + more)
        #expect(await reopened.status().statistics.dictionariesWritten == 0)
        await reopened.close()
        let verification = try LogDirectory(path: withDictionary.path).verify()
        #expect(verification.isClean, "\(verification.damage)")
        #expect(try Self.codecs(in: withDictionary).suffix(50).allSatisfy { $0 == .lz4Dictionary })
    }

    @Test func aDictionaryThatCannotBeWrittenLeavesItsSegmentWithoutOne() async throws {
        let directory = TemporaryDirectory("dictionary-fault")
        defer { directory.remove() }
        let fileSystem = FaultInjectingFileSystem()
        // Appends not synchronized: the first file synchronized is the first dictionary's.
        var configuration = LogConfiguration(fsync: .never, segmentBytes: 128 << 10)
        configuration.dictionaryBytes = 4096
        let log = try await openLog(directory: directory.path, configuration: configuration, fileSystem: fileSystem)
        fileSystem.failNextSynchronize()
        let written = try await Self.fill(log, appends: 600, seed: 3)
        #expect(try await readAll(log).map(\.payload.text) == written)
        let statistics = await log.status().statistics
        #expect(statistics.appendsFailed == 0)
        await log.close()
        // The first segment went on without (no half-written dictionary is used); later segments
        // have theirs.
        let segments = try LogSurgery(directory: directory.path).segments()
        #expect(segments.count >= 2)
        #expect(segments[0].batches.allSatisfy { $0.header.codec != .lz4Dictionary })
        #expect(segments[1].batches.contains { $0.header.codec == .lz4Dictionary })
        #expect(statistics.dictionariesWritten == segments.count - 1)
        #expect(try LogDirectory(path: directory.path).verify().isClean)
    }

    @Test func aDamagedDictionaryIsReportedNeverReadAsRecords() async throws {
        let directory = TemporaryDirectory("dictionary-damage")
        defer { directory.remove() }
        let log = try await openLog(directory: directory.path, configuration: LogConfiguration(segmentBytes: 256 << 10))
        let written = try await Self.fill(log, appends: 3_000)
        await log.close()
        let backup = TemporaryDirectory("dictionary-backup")
        defer { backup.remove() }
        // A backup holds the dictionaries and reads back whole.
        let reopened = try await openLog(directory: directory.path)
        _ = try await reopened.backupPoint().copy(to: backup.path + "/data")
        await reopened.close()
        var copied = [String]()
        try LogDirectory(path: backup.path + "/data").forEachRecord(in: 1...UInt64.max) {
            copied.append($0.payload.text)
            return true
        }
        #expect(copied == written)

        let dictionary = try #require(try Self.dictionaryFiles(in: directory).first)
        try flipBit(in: directory.file(dictionary), at: 100)
        let verification = try LogDirectory(path: directory.path).verify()
        #expect(!verification.isClean)
        #expect(verification.damage.contains { $0.defect.contains(".dict file is missing or damaged") })
        // The log still opens; reading the damaged segment fails with corruption, not garbage.
        let damaged = try await openLog(directory: directory.path)
        await #expect(throws: LogError.self) { _ = try await readAll(damaged) }
        do {
            _ = try await damaged.read(from: 1, maxRecords: 100_000)
        } catch let error as LogError {
            #expect(error.code == .corruption)
        }
        await damaged.close()
    }

    /// While the log is quiet, small groups are compressed with LZ4HC against the dictionary: the
    /// same codec 2 on disk, read back by the same decoder, smaller than LZ4's.
    @Test func aQuietLogCompressesHarderInTheSameFormat() async throws {
        var sizes: [Int64] = []
        for threshold: Int64 in [0, .max] {
            let directory = TemporaryDirectory("dictionary-hc")
            defer { directory.remove() }
            var configuration = LogConfiguration(segmentBytes: 256 << 10)
            configuration.highCompressionBelowBytesPerSecond = threshold
            let log = try await openLog(directory: directory.path, configuration: configuration)
            let written = try await Self.fill(log, appends: 2_000)
            #expect(try await readAll(log).map(\.payload.text) == written)
            sizes.append(await log.status().statistics.bytesWritten)
            await log.close()
            let reopened = try await openLog(directory: directory.path)
            #expect(try await readAll(reopened).map(\.payload.text) == written)
            await reopened.close()
            #expect(try Self.codecs(in: directory).filter { $0 == .lz4Dictionary }.count > 1_000)
            #expect(try LogDirectory(path: directory.path).verify().isClean)
        }
        #expect(Double(sizes[1]) < Double(sizes[0]) * 0.95, "LZ4HC \(sizes[1]) bytes against LZ4 \(sizes[0])")
    }

    @Test func theWriteRateIsCountedInOneSecondWindows() {
        var rate = WriteRate()
        var quiet: [Bool] = []
        func check(_ milliseconds: Int) { quiet.append(rate.isQuiet(below: 1_000, at: .milliseconds(milliseconds))) }
        check(0)
        rate.note(600, at: .milliseconds(100))
        check(200)
        rate.note(600, at: .milliseconds(900))
        check(950)
        // The next window: the busy one before it still counts.
        check(1_500)
        // Two windows on: quiet again.
        check(2_100)
        rate.note(1_500, at: .milliseconds(2_200))
        check(2_300)
        // A gap of more than two seconds forgets everything.
        check(4_500)
        #expect(quiet == [true, true, false, false, true, false, true])
    }
}
