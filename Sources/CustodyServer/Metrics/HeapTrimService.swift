import Logging
import ServiceLifecycle

#if canImport(Glibc)
import CMalloc
import Glibc
#endif

/// Gives free heap memory back to the system while the server runs (glibc's `malloc_trim`).
///
/// Under sustained ingest the server's threads allocate and free from several malloc arenas.
/// glibc returns memory to the system only from the top of an arena, so the free chunks between
/// blocks still in use stay resident: on a P2 soak (docs/benchmarks.md, P9) the heap in use stayed
/// at ~300 MiB while malloc held ~180 MiB more that nothing used. `malloc_trim(0)` releases the
/// free pages inside every arena (`MADV_DONTNEED`), keeping the address space.
///
/// Rules:
/// - Every `interval`, one pass: when malloc holds more than `slackBytes` free, it trims. Pages
///   given back are faulted in again when malloc reuses them: every 30 s costs no measurable
///   ingest and keeps the soak under 512 MiB; every 5 s was flatter but cost ~7% of P2.
/// - A pass takes every arena's lock in turn while it walks that arena's free chunks; it runs on
///   the calling task's thread, never holds a lock of Custody's, and does nothing on platforms
///   without glibc.
struct HeapTrimService: Service {
    var interval: Duration = .seconds(30)
    var slackBytes: Int = 32 << 20
    let logger: Logger

    func run() async throws {
        while !Task.isShuttingDownGracefully {
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
            } catch {
                return
            }
            if let pass = Self.pass(slackBytes: slackBytes) {
                logger.debug(
                    "gave free heap memory back to the system",
                    metadata: ["free_bytes": "\(pass.freeBytes)", "resident_before": "\(pass.residentBefore ?? 0)"]
                )
            }
        }
    }

    /// One trim, when malloc holds more than `slackBytes` free; nil when it held less (or the
    /// platform has no glibc).
    static func pass(slackBytes: Int) -> (freeBytes: Int, residentBefore: Int?)? {
        #if canImport(Glibc)
        let free = Int(mallinfo2().fordblks)
        guard free > slackBytes else { return nil }
        let resident = ProcessMemory.readResidentBytes()
        malloc_trim(0)
        return (free, resident)
        #else
        return nil
        #endif
    }
}
