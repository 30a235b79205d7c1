import CustodyCore
import CustodyLog
import Prometheus
import Synchronization

/// The server's counters and the `/metrics` and `/api/admin/stats` views of them (docs/api.md
/// "Operations"). Counters and latency histograms are kept as requests run; the gauges (log head,
/// bytes on disk, projection lag, cache, live clients, …) are read from the runtime when scraped,
/// so they are never stale.
public final class ServerMetrics: Sendable {
    let registry: PrometheusCollectorRegistry
    private let ingestEvents: Counter
    private let ingestBytes: Counter
    private let fsyncDuration: DurationHistogram
    private let rejectedByCode = Mutex<[String: Int]>([:])
    /// What each counter read from a snapshot (``counter(_:_:value:)``) last reached.
    private let exported = Mutex<[String: Int64]>([:])

    /// fdatasync takes ~3 ms on this kind of machine; a stalled disk takes seconds.
    static let fsyncBuckets: [Duration] = [
        .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5),
        .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(1000),
    ]

    static let latencyBuckets: [Duration] = [
        .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10),
        .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(1000), .milliseconds(5000),
    ]

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        ingestEvents = registry.makeCounter(name: "custody_ingest_events_total", help: "Spans accepted through the API.")
        ingestBytes = registry.makeCounter(
            name: "custody_ingest_bytes_total",
            help: "Bytes of request bodies (as received, before decompression) taken for ingest, on every route and transport."
        )
        fsyncDuration = registry.makeDurationHistogram(
            name: "custody_log_fsync_duration_seconds",
            buckets: Self.fsyncBuckets,
            help: "How long each fdatasync of appended log data took."
        )
        registry.makeGauge(
            name: "custody_build_info",
            labels: [("version", CustodyBuild.version), ("swift", CustodyBuild.swiftVersion)],
            help: "Always 1: which build of Custody this is."
        ).set(Int64(1))
    }

    /// An ingest request's spans and body bytes, once taken (acknowledged).
    public func ingested(events: Int, bytes: Int) {
        ingestEvents.increment(by: Int64(events))
        ingestBytes.increment(by: Int64(bytes))
    }

    /// One fdatasync of the log: give this to ``LogConfiguration/onSynchronization``.
    public func recordSynchronization(_ duration: Duration) {
        fsyncDuration.recordNanoseconds(duration.nanoseconds)
    }

    /// Sets the counter `name` to `value`, a total kept elsewhere (the log's, the live hub's)
    /// that only grows while the process runs: it is advanced by what the total gained since the
    /// last scrape, so that it is a Prometheus counter, not a gauge.
    func counter(_ name: String, _ help: String, value: Int64) {
        let gained = exported.withLock { last in
            let gained = max(0, value - last[name, default: 0])
            last[name] = max(value, last[name, default: 0])
            return gained
        }
        let counter = registry.makeCounter(name: name, help: help)
        if gained > 0 { counter.increment(by: gained) }
    }

    /// A request answered: its latency by route and status class; rejections by code.
    func answered(method: String, route: String, status: Int, code: String?, duration: Duration) {
        registry.makeDurationHistogram(
            name: "custody_http_request_duration_seconds",
            labels: [("method", method), ("route", route), ("status", "\(status / 100)xx")],
            buckets: Self.latencyBuckets,
            help: "Time from a request's arrival to its answer."
        ).recordNanoseconds(duration.nanoseconds)
        if let code {
            registry.makeCounter(name: "custody_http_rejected_total", labels: [("code", code)], help: "Requests answered with an error, by code.")
                .increment()
            rejectedByCode.withLock { $0[code, default: 0] += 1 }
        }
    }

    var rejected: [String: Int] { rejectedByCode.withLock { $0 } }
}

extension Duration {
    var nanoseconds: Int64 {
        let parts = components
        return parts.seconds * 1_000_000_000 + parts.attoseconds / 1_000_000_000
    }
}

/// What `custody_build_info` says.
enum CustodyBuild {
    static let version = "0.1.0"
    #if swift(>=6.3)
    static let swiftVersion = "6.3"
    #else
    static let swiftVersion = "6"
    #endif
}
