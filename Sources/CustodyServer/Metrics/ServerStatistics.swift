import CustodyCore
import CustodyLog
import NIOCore
import Prometheus
import Synchronization

#if canImport(Glibc)
import CMalloc
import Glibc
#endif
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A snapshot of everything the server measures about itself: `GET /api/admin/stats` returns it
/// as JSON and `GET /metrics` as Prometheus gauges.
struct ServerStatistics: Sendable {
    var log: LogStatus
    var projectionApplied: UInt64
    var projectionLagEvents: UInt64
    var projectionLagSeconds: Double
    /// The projection store's engine (`sqlite`, `postgresql`).
    var projectionEngine: String
    /// Whether this node applies events to the store (false: another node sharing it does).
    var projectionApplies: Bool
    var cachedSpans: Int
    var cachedTraces: Int
    var liveClients: Int
    var liveDelivered: Int
    var liveDropped: Int
    var ingestInFlight: Int
    var ingestRefused: Int
    var rejected: [String: Int]
    var rebuild: JSONValue
    var memory: ProcessMemory
    /// GitHub operations pending in the outbox; nil when GitHub is not configured.
    var outboxDepth: Int?
    /// What retention keeps and deleted (``CoreRuntime/retentionStatus()``).
    var retention: JSONValue = .null

    static func collect(runtime: CoreRuntime, metrics: ServerMetrics, gate: IngestGate) async -> ServerStatistics {
        let lag = await runtime.projector.lag()
        return ServerStatistics(
            log: await runtime.log.status(),
            projectionApplied: await runtime.projector.appliedSeq,
            projectionLagEvents: lag.events,
            projectionLagSeconds: lag.seconds,
            projectionEngine: runtime.projector.store.engine,
            projectionApplies: await !runtime.projector.isFollowing,
            cachedSpans: await runtime.cache.count,
            cachedTraces: await runtime.cache.traceCount,
            liveClients: await runtime.hub.clientCount,
            liveDelivered: await runtime.hub.deliveredTotal,
            liveDropped: await runtime.hub.droppedTotal,
            ingestInFlight: gate.current,
            ingestRefused: gate.refused.load(ordering: .relaxed),
            rejected: metrics.rejected,
            rebuild: runtime.rebuild.status,
            memory: ProcessMemory.current(),
            outboxDepth: runtime.github.isConfigured ? runtime.github.outboxDepth : nil,
            retention: await runtime.retentionStatus()
        )
    }

    var bytesOnDisk: Int64 { log.segments.reduce(0) { $0 + $1.bytes } }
    var compressionRatio: Double {
        log.statistics.bytesWritten > 0 ? Double(log.statistics.uncompressedBytes) / Double(log.statistics.bytesWritten) : 0
    }

    var jsonValue: JSONValue {
        let statistics = log.statistics
        return .object([
            "log": .object([
                "first_seq": .integer(Int64(log.firstSeq)), "last_seq": .integer(Int64(log.lastSeq)),
                "segments": .integer(Int64(log.segments.count)), "bytes_on_disk": .integer(bytesOnDisk),
                "bytes_written": .integer(statistics.bytesWritten), "uncompressed_bytes": .integer(statistics.uncompressedBytes),
                "compression_ratio": .number(compressionRatio), "appends": .integer(Int64(statistics.appends)),
                "records_appended": .integer(Int64(statistics.recordsAppended)), "fsyncs": .integer(Int64(statistics.synchronizations)),
                "fsync_seconds_total": .number(Double(statistics.synchronizationNanoseconds) / 1e9),
                "fsync_longest_ms": .number(Double(statistics.longestSynchronizationNanoseconds) / 1e6),
                "failure": log.failure.map(JSONValue.string) ?? .null,
                "recovery": .object([
                    "seconds": .number(log.recovery.durationSeconds), "bytes_verified": .integer(log.recovery.bytesVerified),
                    "tail_cuts": .array(
                        log.recovery.tailCuts.map { cut in
                            .object([
                                "segment": .string(cut.segment), "offset": .integer(cut.offset), "bytes_cut": .integer(cut.bytesCut),
                                "defect": .string(cut.defect),
                            ])
                        }
                    ),
                    "indexes_rebuilt": .integer(Int64(log.recovery.indexesRebuilt.count)),
                ]),
                "losses": .array(
                    log.losses.map { loss in
                        .object([
                            "first_seq": .integer(Int64(bitPattern: loss.firstLostSeq)), "last_seq": .integer(Int64(bitPattern: loss.lastLostSeq)),
                            "segment": .string(loss.segment), "offset": .integer(loss.offset),
                            "side_file": loss.sideFile.map(JSONValue.string) ?? .null,
                            "reason": .string(loss.defect), "recorded_at": loss.recordedAt.map { .string(RFC3339.format($0)) } ?? .null,
                        ])
                    }
                ),
            ]),
            "projections": .object([
                "applied_seq": .integer(Int64(projectionApplied)), "lag_events": .integer(Int64(projectionLagEvents)),
                "lag_seconds": .number(projectionLagSeconds), "engine": .string(projectionEngine),
                "applies_events": .bool(projectionApplies),
            ]),
            "cache": .object(["spans": .integer(Int64(cachedSpans)), "traces": .integer(Int64(cachedTraces))]),
            "live": .object([
                "clients": .integer(Int64(liveClients)), "delivered": .integer(Int64(liveDelivered)), "dropped": .integer(Int64(liveDropped)),
            ]),
            "ingest": .object(["requests_in_flight": .integer(Int64(ingestInFlight)), "refused": .integer(Int64(ingestRefused))]),
            "requests": .object(["rejected": .object(rejected.mapValues { .integer(Int64($0)) })]),
            "outbox": .object(["configured": .bool(outboxDepth != nil), "depth": .integer(Int64(outboxDepth ?? 0))]),
            "rebuild": rebuild,
            "retention": retention,
            "process": .object([
                "rss_bytes": memory.residentBytes.map { .integer(Int64($0)) } ?? .null,
                "heap_bytes": memory.heapBytes.map { .integer(Int64($0)) } ?? .null,
                "heap_in_use_bytes": memory.heapInUseBytes.map { .integer(Int64($0)) } ?? .null,
                "sqlite_bytes": .integer(memory.sqliteBytes),
            ]),
        ])
    }

    /// Sets the gauges of `metrics` to this snapshot, and advances its counters to it.
    func export(to metrics: ServerMetrics) {
        let registry = metrics.registry
        func gauge(_ name: String, _ help: String, _ value: Double, _ labels: [(String, String)] = []) {
            registry.makeGauge(name: name, labels: labels, help: help).set(value)
        }
        let statistics = log.statistics
        gauge("custody_log_head_seq", "The seq of the last acknowledged event.", Double(log.lastSeq))
        gauge("custody_log_bytes_on_disk", "Bytes of segment files.", Double(bytesOnDisk))
        gauge("custody_log_segments", "Segment files.", Double(log.segments.count))
        gauge("custody_log_compression_ratio", "Record bytes per byte written since start.", compressionRatio)
        metrics.counter("custody_log_fsyncs_total", "fdatasync calls for appended data.", value: Int64(statistics.synchronizations))
        gauge("custody_log_fsync_longest_seconds", "The longest fdatasync since start.", Double(statistics.longestSynchronizationNanoseconds) / 1e9)
        metrics.counter("custody_log_appends_failed_total", "Appends that failed (storage unavailable).", value: Int64(statistics.appendsFailed))
        gauge(
            "custody_projection_applied_seq",
            "The seq the projections have applied.",
            Double(projectionApplied),
            [("projection", projectionEngine)]
        )
        gauge(
            "custody_projection_lag_events",
            "Events the projections are behind the log.",
            Double(projectionLagEvents),
            [("projection", projectionEngine)]
        )
        gauge(
            "custody_projection_lag_seconds",
            "Seconds since the projections were last caught up.",
            projectionLagSeconds,
            [("projection", projectionEngine)]
        )
        gauge("custody_cache_spans", "Spans in the active-span cache.", Double(cachedSpans))
        gauge("custody_cache_traces", "Traces in the active-span cache.", Double(cachedTraces))
        gauge("custody_live_clients", "Connected live-stream clients.", Double(liveClients))
        metrics.counter("custody_live_dropped_total", "Live messages dropped for slow clients.", value: Int64(liveDropped))
        metrics.counter("custody_live_delivered_total", "Live messages queued to clients.", value: Int64(liveDelivered))
        gauge("custody_ingest_in_flight", "Ingest requests being processed.", Double(ingestInFlight))
        metrics.counter("custody_ingest_refused_total", "Ingest requests refused as overloaded.", value: Int64(ingestRefused))
        gauge("custody_outbox_depth", "GitHub operations waiting to run.", Double(outboxDepth ?? 0))
        if let residentBytes = memory.residentBytes {
            gauge("custody_process_resident_bytes", "Resident memory of the server process.", Double(residentBytes))
        }
        if let heapBytes = memory.heapBytes {
            gauge("custody_process_heap_bytes", "Bytes malloc holds from the system (all arenas).", Double(heapBytes))
        }
        if let heapInUseBytes = memory.heapInUseBytes {
            gauge("custody_process_heap_in_use_bytes", "Bytes of malloc's heap in allocated blocks.", Double(heapInUseBytes))
        }
        gauge("custody_process_sqlite_bytes", "Memory SQLite has allocated (page caches, statements).", Double(memory.sqliteBytes))
    }
}

/// Where the process's memory is: resident (`/proc/self/statm`, Linux), malloc's heap (glibc's
/// `mallinfo2`: what it holds from the system and what is in allocated blocks; the difference is
/// free memory malloc keeps), and SQLite's share of the heap. nil where the platform cannot say.
///
/// The heap figures are measured at most once per ``heapSampleInterval``: `mallinfo2` walks every
/// free chunk of every arena under that arena's lock, which took ~4 ms on a fragmented heap under
/// load (docs/benchmarks.md, P3) — a dashboard or a load generator polling the stats must not make
/// the server's allocations wait that often.
struct ProcessMemory: Sendable {
    var residentBytes: Int?
    var heapBytes: Int?
    var heapInUseBytes: Int?
    var sqliteBytes: Int64

    /// How old the heap figures may be.
    static let heapSampleInterval: Duration = .seconds(2)
    private static let heapSample = Mutex<(at: ContinuousClock.Instant, bytes: Int, inUse: Int)?>(nil)

    /// The figures now, the heap's as of at most `heapAge` ago.
    static func current(heapAge: Duration = heapSampleInterval) -> ProcessMemory {
        var memory = ProcessMemory(residentBytes: readResidentBytes(), sqliteBytes: SQLiteProjectionStore.memoryInUse)
        #if canImport(Glibc)
        let now = ContinuousClock.now
        let heap: (bytes: Int, inUse: Int)
        if let sample = heapSample.withLock({ $0 }), now - sample.at < heapAge {
            heap = (sample.bytes, sample.inUse)
        } else {
            // Measured outside the lock: a concurrent caller measures too rather than wait.
            let info = mallinfo2()
            heap = (Int(info.arena + info.hblkhd), Int(info.uordblks + info.hblkhd))
            heapSample.withLock { $0 = (now, heap.bytes, heap.inUse) }
        }
        memory.heapBytes = heap.bytes
        memory.heapInUseBytes = heap.inUse
        #endif
        return memory
    }

    static func readResidentBytes() -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return nil }
        let fields = text.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return nil }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }
}
