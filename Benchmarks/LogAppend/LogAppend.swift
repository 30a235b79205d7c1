import Benchmark
import CustodyLog
import CustodyLogTesting
import Foundation
import GRDB
import NIOCore

// Segment-log benchmarks (docs/benchmarks.md P1): append throughput with 1, 8 and 64 concurrent
// appenders under fsync `always` and `never`, the one-INSERT-per-event SQLite baseline P1 is
// compared with, scan throughput, and the compression ratio on span JSON.
//
// Each iteration appends a fixed number of events; `events/s` is measured inside the
// iteration, around the appends only (payloads are made beforehand).

/// Where benchmark logs go: a real disk (the temporary directory), never tmpfs.
func benchmarkDirectory(_ name: String) -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("custody-bench-\(name)-\(UUID().uuidString)").path
    try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// `appenders` lists of appends of `perAppend` span-like events of `size` bytes.
func makeWorkload(appenders: Int, events: Int, perAppend: Int, size: Int = 256) -> [[[ByteBuffer]]] {
    let appendsPerAppender = max(1, events / (appenders * perAppend))
    return (0..<appenders).map { appender in
        var random = SplitMix64(seed: UInt64(appender + 1))
        return (0..<appendsPerAppender).map { call in
            (0..<perAppend).map { SamplePayloads.span(call * perAppend + $0, size: size, random: &random) }
        }
    }
}

func seconds(_ duration: Duration) -> Double {
    duration.inSeconds
}

/// Appends the workload concurrently; returns events per second.
func appendConcurrently(_ log: SegmentLog, _ workload: [[[ByteBuffer]]]) async throws -> Int {
    let events = workload.joined().reduce(0) { $0 + $1.count }
    let clock = ContinuousClock()
    let start = clock.now
    try await withThrowingTaskGroup(of: Void.self) { group in
        for appends in workload {
            group.addTask {
                for payloads in appends { _ = try await log.append(payloads) }
            }
        }
        try await group.waitForAll()
    }
    return Int(Double(events) / seconds(clock.now - start))
}

/// Each iteration appends `workload` to a new log with `configuration` and records events/s.
func measureAppends(_ benchmark: Benchmark, _ workload: [[[ByteBuffer]]], configuration: LogConfiguration, name: String) async throws {
    for _ in benchmark.scaledIterations {
        let directory = benchmarkDirectory(name)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let log = try await SegmentLog.open(directory: directory, configuration: configuration)
        benchmark.startMeasurement()
        let rate = try await appendConcurrently(log, workload)
        benchmark.stopMeasurement()
        benchmark.measurement(eventsPerSecond, rate)
        await log.close()
    }
}

/// The log the scan benchmark reads, written once by its setup.
let scanDirectory = FileManager.default.temporaryDirectory.appendingPathComponent("custody-bench-scan-\(UUID().uuidString)").path

let eventsPerSecond = BenchmarkMetric.custom("events/s", polarity: .prefersLarger, useScalingFactor: false)

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [eventsPerSecond, .wallClock, .cpuTotal, .peakMemoryResident],
        timeUnits: .milliseconds,
        warmupIterations: 1,
        maxDuration: .seconds(10),
        maxIterations: 10
    )

    for policy in [FsyncPolicy.always, .never] {
        for appenders in [1, 8, 64] {
            let perAppend = 100
            let events = 200_000
            Benchmark("Append 256 B events, \(appenders) appenders × \(perAppend)/append, fsync \(policy)") { benchmark in
                let workload = makeWorkload(appenders: appenders, events: events, perAppend: perAppend)
                try await measureAppends(benchmark, workload, configuration: LogConfiguration(fsync: policy), name: "append")
            }
        }
    }

    // P13: the hash chain's cost, side by side with the runs above (which have it on, the
    // default): the same workload with `hashChain` off (version 1 batches, CRC only).
    for policy in [FsyncPolicy.always, .never] {
        Benchmark("Append 256 B events, 64 appenders × 100/append, fsync \(policy), chain off") { benchmark in
            let workload = makeWorkload(appenders: 64, events: 200_000, perAppend: 100)
            var configuration = LogConfiguration(fsync: policy)
            configuration.hashChain = false
            try await measureAppends(benchmark, workload, configuration: configuration, name: "append-unchained")
        }
    }

    // The chain alone: SHA-256(chain ‖ seq ‖ record) over 256 B records, one after the other, on
    // one thread (what a group commit's second writer thread does).
    Benchmark("Hash chain over 100,000 256 B records") { benchmark in
        let records = makeWorkload(appenders: 1, events: 100_000, perAppend: 1_000).joined().joined().map { Array($0.readableBytesView) }
        for _ in benchmark.scaledIterations {
            let clock = ContinuousClock()
            let start = clock.now
            var value = ChainValue.zero
            for (position, record) in records.enumerated() {
                value = record.withUnsafeBytes { value.next(seq: UInt64(position + 1), bytes: $0) }
            }
            benchmark.measurement(eventsPerSecond, Int(Double(records.count) / seconds(clock.now - start)))
            blackHole(value)
        }
    }

    // Pure group commit: every append is one event, so only concurrency fills a group.
    for appenders in [1, 64] {
        Benchmark("Append 256 B events, \(appenders) appenders × 1/append, fsync always") { benchmark in
            let workload = makeWorkload(appenders: appenders, events: appenders == 1 ? 5_000 : 100_000, perAppend: 1)
            try await measureAppends(benchmark, workload, configuration: LogConfiguration(fsync: .always), name: "append1")
        }
    }

    // The baseline of P1: the seed design's one INSERT (one transaction) per event, SQLite in WAL
    // mode with synchronous=FULL (durable like fsync `always`), 64 concurrent writers.
    Benchmark("SQLite baseline: one INSERT per 256 B event, 64 writers, WAL, synchronous=FULL") { benchmark in
        let workload = makeWorkload(appenders: 64, events: 6_400, perAppend: 1)
        for _ in benchmark.scaledIterations {
            let directory = benchmarkDirectory("sqlite")
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let pool = try DatabasePool(path: directory + "/baseline.sqlite")
            // GRDB opens WAL connections with synchronous=NORMAL (no fsync per commit); the
            // baseline must be as durable as the log, so the writer connection is set to FULL.
            try await pool.writeWithoutTransaction { db in
                try db.execute(sql: "PRAGMA synchronous = FULL")
                let synchronous = try Int.fetchOne(db, sql: "PRAGMA synchronous")
                precondition(synchronous == 2, "synchronous is not FULL")
                try db.execute(sql: "CREATE TABLE operation_logs (id INTEGER PRIMARY KEY, ingested_at INTEGER NOT NULL, body BLOB NOT NULL)")
            }
            let clock = ContinuousClock()
            benchmark.startMeasurement()
            let start = clock.now
            try await withThrowingTaskGroup(of: Void.self) { group in
                for appends in workload {
                    group.addTask {
                        for payloads in appends {
                            let body = Data(payloads[0].readableBytesView)
                            try await pool.write { db in
                                try db.execute(
                                    sql: "INSERT INTO operation_logs (ingested_at, body) VALUES (?, ?)",
                                    arguments: [SegmentLog.now(), body]
                                )
                            }
                        }
                    }
                }
                try await group.waitForAll()
            }
            let elapsed = clock.now - start
            benchmark.stopMeasurement()
            benchmark.measurement(eventsPerSecond, Int(Double(workload.joined().count) / seconds(elapsed)))
        }
    }

    // Reading: a full scan of a 1,000,000-event log (checksums verified, records decoded).
    Benchmark(
        "Scan 1,000,000 256 B events",
        configuration: .init(metrics: [eventsPerSecond, .wallClock, .cpuTotal], timeUnits: .milliseconds, maxIterations: 5)
    ) { benchmark, directory in
        let log = try await SegmentLog.open(directory: directory)
        let clock = ContinuousClock()
        for _ in benchmark.scaledIterations {
            let start = clock.now
            var next: UInt64 = 1
            var count = 0
            while true {
                let records = try await log.read(from: next, maxRecords: 65_536)
                guard let last = records.last else { break }
                count += records.count
                next = last.seq + 1
            }
            benchmark.measurement(eventsPerSecond, Int(Double(count) / seconds(clock.now - start)))
            blackHole(count)
        }
        await log.close()
    } setup: {
        let directory = scanDirectory
        let log = try await SegmentLog.open(directory: directory, configuration: LogConfiguration(fsync: .never))
        _ = try await appendConcurrently(log, makeWorkload(appenders: 8, events: 1_000_000, perAppend: 500))
        await log.close()
        return directory
    } teardown: {
        try? FileManager.default.removeItem(atPath: scanDirectory)
    }

    // Compression: raw span JSON bytes per byte on disk, ×100 (so 385 means 3.85×).
    Benchmark(
        "Compression ratio ×100 on span JSON (256 B events)",
        configuration: .init(
            metrics: [.custom("ratio ×100", polarity: .prefersLarger, useScalingFactor: false)],
            maxIterations: 1
        )
    ) { benchmark in
        let directory = benchmarkDirectory("ratio")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let workload = makeWorkload(appenders: 4, events: 200_000, perAppend: 500)
        let raw = workload.joined().joined().reduce(0) { $0 + $1.readableBytes }
        let log = try await SegmentLog.open(directory: directory, configuration: LogConfiguration(fsync: .never))
        _ = try await appendConcurrently(log, workload)
        let bytes = await log.status().segments.reduce(0) { $0 + $1.bytes }
        await log.close()
        benchmark.measurement(.custom("ratio ×100", polarity: .prefersLarger, useScalingFactor: false), raw * 100 / Int(bytes))
    }
}
