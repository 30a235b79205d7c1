import ArgumentParser
import CustodyCore
import CustodyLog
import CustodyLogTesting
import Foundation
import Histogram
import NIOCore
import Synchronization

struct ProjectionReport: Codable {
    var events: UInt64
    /// From the start of ingest until the projections held every event.
    var secondsUntilCaughtUp: Double
    var eventsPerSecond: Double
    var worstLagEvents: UInt64
    var worstLagSeconds: Double
}

struct LatencySummary: Codable {
    var p50: UInt64
    var p90: UInt64
    var p99: UInt64
    var p999: UInt64
    var max: UInt64

    init(_ histogram: Histogram<UInt64>) {
        p50 = histogram.valueAtPercentile(50)
        p90 = histogram.valueAtPercentile(90)
        p99 = histogram.valueAtPercentile(99)
        p999 = histogram.valueAtPercentile(99.9)
        max = histogram.max
    }
}

struct IngestReport: Codable {
    var events: Int
    var appendCalls: Int
    var concurrency: Int
    var batch: Int
    var eventBytes: Int
    var fsync: String
    var seconds: Double
    var eventsPerSecond: Double
    var megabytesPerSecond: Double
    /// Per append call, from the call to its acknowledgement.
    var latencyMicroseconds: LatencySummary
    /// The span JSON the events were made from.
    var rawBytes: Int
    /// The events as encoded in the log (before compression).
    var encodedBytes: Int
    var bytesOnDisk: Int64
    var compressionRatio: Double
    var writes: Int
    var fsyncs: Int
    /// The mean time of one `fdatasync` of the appends, in µs (0 without any).
    var fsyncMeanMicroseconds: Double
    var eventsPerWrite: Double
    var projections: ProjectionReport?
    /// Whether the log was hash-chained, and how many signed checkpoints were appended (the
    /// last at the end of the run; they are not among ``events``).
    var hashChain: Bool
    var checkpoints: Int
    var firstSeq: UInt64
    var lastSeq: UInt64
    var dataDirectory: String

    var text: String {
        let l = latencyMicroseconds
        return """
            in-process ingest: \(events) span events (from ~\(eventBytes) B of JSON each), \(concurrency) appenders × \(batch) events per append, fsync \(fsync)
              throughput   \(String(format: "%.0f", eventsPerSecond)) events/s, \(String(format: "%.1f", megabytesPerSecond)) MB/s of span JSON, \(String(format: "%.2f", seconds)) s
              ack latency  p50 \(formatMicros(l.p50))  p90 \(formatMicros(l.p90))  p99 \(formatMicros(l.p99))  p99.9 \(formatMicros(l.p999))  max \(formatMicros(l.max))
              disk         \(formatBytes(bytesOnDisk)) for \(formatBytes(Int64(rawBytes))) of span JSON (\(formatBytes(Int64(encodedBytes))) encoded): \(String(format: "%.2f", compressionRatio))× smaller
              group commit \(writes) writes, \(fsyncs) fsyncs of \(String(format: "%.0f", fsyncMeanMicroseconds)) µs on average, \(String(format: "%.0f", eventsPerWrite)) events per write
              chain        \(hashChain ? "on, \(checkpoints) signed checkpoints" : "off, no checkpoints")
              seqs         \(firstSeq)–\(lastSeq) in \(dataDirectory)
            """
                + (projections.map { p in
                    "\n  projections  \(p.events) events applied, caught up \(String(format: "%.2f", p.secondsUntilCaughtUp)) s after the start: "
                        + "\(String(format: "%.0f", p.eventsPerSecond)) events/s; worst lag \(p.worstLagEvents) events, \(String(format: "%.2f", p.worstLagSeconds)) s"
                } ?? "")
    }
}

func formatMicros(_ micros: UInt64) -> String {
    micros >= 10_000 ? String(format: "%.1f ms", Double(micros) / 1000) : "\(micros) µs"
}

/// A progress line with rate and ETA on a terminal (stderr); silent otherwise.
///
/// Safe to call from any thread, synchronously (a rebuild's progress callback): the count is kept
/// under a lock, and the line is written after the lock is released.
final class ProgressLine: Sendable {
    private struct State {
        var done = 0
        var lastDrawn = ContinuousClock.now
    }

    let total: Int
    let unit: String
    let enabled = ProcessEnvironment.standardErrorIsTerminal
    let started = ContinuousClock.now
    private let state = Mutex(State())

    init(total: Int, unit: String) {
        self.total = total
        self.unit = unit
    }

    func set(_ count: Int) {
        update { $0 = count }
    }

    func advance(by count: Int) {
        update { $0 += count }
    }

    /// Changes the count under the lock; draws (after unlocking) at most every 200 ms.
    private func update(_ change: (inout Int) -> Void) {
        let text = state.withLock { state -> String? in
            change(&state.done)
            guard enabled, ContinuousClock.now - state.lastDrawn > .milliseconds(200) else { return nil }
            state.lastDrawn = .now
            return self.line(done: state.done)
        }
        if let text { printError(text, terminator: "") }
    }

    func finish() {
        guard enabled else { return }
        printError(line(done: state.withLock { $0.done }))
    }

    private func line(done: Int) -> String {
        let elapsed = ContinuousClock.now - started
        let seconds = max(elapsed.inSeconds, 0.001)
        let rate = Double(done) / seconds
        let fraction = Double(done) / Double(max(total, 1))
        let width = 30
        let filled = min(width, max(0, Int(fraction * Double(width))))
        let bar = String(repeating: "█", count: filled) + String(repeating: "░", count: width - filled)
        let eta = rate > 0 ? Double(total - done) / rate : 0
        return String(format: "\r%@ %3.0f%% %d/%d %@  %.0f/s  ETA %.0fs ", bar, fraction * 100, done, total, unit, rate, eta)
    }
}
