import DequeModule
import Logging
import ServiceLifecycle
import Synchronization

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Sends a worker's spans to Custody in batches, off the worker's path: ``record(_:)`` only puts
/// the span in a bounded queue (it never waits, never fails), and ``run()`` sends what is queued
/// every flush interval as `recordLog` batches.
///
/// Guarantees:
/// - At most `capacity` spans wait; a span recorded while the queue is full is dropped and counted
///   (``Statistics/dropped``), never blocking the caller.
/// - A batch that fails transiently (no answer, 429, 503, 507, 5xx) is retried with capped
///   exponential backoff and jitter, waiting at least the server's `Retry-After`; after
///   `maximumAttempts` it is dropped and counted. A batch the server rejects (another 4xx) is
///   dropped at once and counted as rejected.
/// - Spans are sent in the order they were recorded. On graceful shutdown what is queued is sent
///   (with the same retries) before ``run()`` returns.
public final class SpanExporter: Service, Sendable {
    public struct Configuration: Sendable {
        public var capacity = 10_000
        public var batchSize = 512
        public var flushInterval: Duration = .milliseconds(200)
        public var maximumAttempts = 6
        public var initialBackoff: Duration = .milliseconds(100)
        public var maximumBackoff: Duration = .seconds(10)
        /// The exporter's own requests are traced by Custody like any other: they go into one
        /// trace per minute named `<prefix>-<yyyyMMddHHmm>` (UTC), not a new trace per batch.
        public var tracePrefix = "span-export"

        public init() {}
    }

    /// Counts since the exporter was made.
    public struct Statistics: Sendable, Hashable {
        public var queued = 0
        public var exported = 0
        /// Dropped because the queue was full or the retries ran out.
        public var dropped = 0
        /// Refused by the server as invalid.
        public var rejected = 0
        public var retries = 0
    }

    struct State {
        var queue: Deque<LogEntry> = []
        var statistics = Statistics()
    }

    let client: CustodyClient
    public let configuration: Configuration
    let logger: Logger
    private let state = Mutex(State())

    public init(client: CustodyClient, configuration: Configuration = Configuration(), logger: Logger = Logger(label: "custody.exporter")) {
        self.client = client
        self.configuration = configuration
        self.logger = logger
    }

    /// Queues a span for sending; returns at once. False when the queue was full (the span is
    /// dropped and counted).
    @discardableResult
    public func record(_ entry: LogEntry) -> Bool {
        state.withLock { state in
            guard state.queue.count < configuration.capacity else {
                state.statistics.dropped += 1
                return false
            }
            state.queue.append(entry)
            state.statistics.queued = state.queue.count
            return true
        }
    }

    public var statistics: Statistics { state.withLock { $0.statistics } }

    /// Sends queued spans every flush interval until graceful shutdown or cancellation, then sends
    /// what is left.
    public func run() async throws {
        // Only the wait is cut short by shutdown: a batch being sent is never abandoned midway.
        while !Task.isCancelled, !Task.isShuttingDownGracefully {
            await cancelWhenGracefulShutdown { try? await Task.sleep(for: self.configuration.flushInterval) }
            await flush(retrying: !Task.isCancelled)
        }
        await flush(retrying: !Task.isCancelled)
    }

    /// Sends everything queued now, batch by batch.
    public func flush() async {
        await flush(retrying: true)
    }

    func flush(retrying: Bool) async {
        while true {
            let batch: [LogEntry] = state.withLock { state in
                let count = min(state.queue.count, configuration.batchSize)
                let batch = Array(state.queue.prefix(count))
                state.queue.removeFirst(count)
                state.statistics.queued = state.queue.count
                return batch
            }
            guard !batch.isEmpty else { return }
            await send(batch, retrying: retrying)
        }
    }

    /// The trace of this minute's export requests.
    func exportTraceId() -> String {
        // "2026-11-25T12:15:43Z" → "202611251215".
        let stamp = Date().formatted(Date.ISO8601FormatStyle()).filter(\.isNumber).prefix(12)
        return "\(configuration.tracePrefix)-\(stamp)"
    }

    func send(_ batch: [LogEntry], retrying: Bool) async {
        var attempt = 0
        while true {
            attempt += 1
            let outcome: Result<LogReceipt, CustodyClientError> = await CustodyTrace.$current.withValue(
                CustodyTrace(traceId: exportTraceId())
            ) {
                do throws(CustodyClientError) {
                    return .success(try await client.recordLog(batch))
                } catch {
                    return .failure(error)
                }
            }
            do throws(CustodyClientError) {
                _ = try outcome.get()
                state.withLock { $0.statistics.exported += batch.count }
                return
            } catch {
                guard error.isTransient else {
                    state.withLock { $0.statistics.rejected += batch.count }
                    logger.warning("Custody refused a batch of spans", metadata: ["error": "\(error)", "spans": "\(batch.count)"])
                    return
                }
                guard retrying, attempt < configuration.maximumAttempts else {
                    state.withLock { $0.statistics.dropped += batch.count }
                    logger.warning("a batch of spans could not be sent", metadata: ["error": "\(error)", "spans": "\(batch.count)"])
                    return
                }
                state.withLock { $0.statistics.retries += 1 }
                // Capped exponential backoff with full jitter, never shorter than Retry-After.
                let ceiling = min(configuration.initialBackoff * (1 << min(attempt - 1, 20)), configuration.maximumBackoff)
                let jittered = ceiling * Double.random(in: 0.5...1.0)
                try? await Task.sleep(for: max(jittered, error.retryAfter ?? .zero))
            }
        }
    }
}
