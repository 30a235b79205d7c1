import CustodyCore
import CustodyLog
import Prometheus
import Synchronization

/// The server's counters and the `/metrics` and `/api/admin/stats` views of them (API.md
/// "Operations"). Counters and latency histograms are kept as requests run; the gauges (log head,
/// bytes on disk, projection lag, cache, live clients, …) are read from the runtime when scraped,
/// so they are never stale.
public final class ServerMetrics: Sendable {
    let registry: PrometheusCollectorRegistry
    private let ingestEvents: Counter
    private let ingestBytes: Counter
    private let rejectedByCode = Mutex<[String: Int]>([:])

    static let latencyBuckets: [Duration] = [
        .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10),
        .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(1000), .milliseconds(5000),
    ]

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        ingestEvents = registry.makeCounter(name: "custody_ingest_events_total", help: "Spans accepted through the API.")
        ingestBytes = registry.makeCounter(name: "custody_ingest_bytes_total", help: "Bytes of request bodies accepted for ingest.")
    }

    func ingested(events: Int, bytes: Int = 0) {
        ingestEvents.increment(by: Int64(events))
        if bytes > 0 { ingestBytes.increment(by: Int64(bytes)) }
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
