/// Span export from tracing SDKs (OTLP/HTTP, OTLP/gRPC, Zipkin): one path for every exporter's
/// spans. A span whose (trace_id, span_id) was already taken within the active-span TTL is
/// acknowledged but not appended again (exporters re-send after a network failure). With
/// `partial` (OTLP), one bad span does not refuse the batch — it is counted as rejected (OTLP's
/// `partial_success`) and the others are taken; without it (Zipkin, whose answer has no room for
/// that), the first bad span refuses the batch, naming it (`[3].source`), and nothing is appended.
public struct SpanExport: Sendable {
    let logs: LogOperations
    let cache: ActiveSpanCache

    public init(logs: LogOperations, cache: ActiveSpanCache) {
        self.logs = logs
        self.cache = cache
    }

    /// What an export did.
    public struct Outcome: Sendable, Hashable {
        public var accepted: Int
        public var duplicates: Int
        public var rejected: Int
        /// The first rejection's reason, for `partial_success.error_message`.
        public var firstError: String?
    }

    /// Validates every span, drops those already taken (in the cache's TTL, or earlier in the same
    /// export), and appends the rest with one `processing` span in a single append, durable
    /// before this returns.
    public func export(_ inputs: [SpanInput], request: RequestTrace, partial: Bool = true) async throws(CoreError) -> Outcome {
        var outcome = Outcome(accepted: 0, duplicates: 0, rejected: 0, firstError: nil)
        let started = ContinuousClock.now
        let now = logs.now()
        var valid: [Span] = []
        valid.reserveCapacity(inputs.count)
        for (index, input) in inputs.enumerated() {
            do {
                valid.append(try input.validated(now: now, newTraceId: logs.newTraceId))
            } catch {
                guard partial else { throw error.prefixingField("[\(index)]") }
                outcome.rejected += 1
                if outcome.firstError == nil { outcome.firstError = error.message }
            }
        }
        // One look at the cache for the whole export, then duplicates within it.
        let keys = valid.map { span in span.spanId.map { ActiveSpanCache.SpanKey(traceId: span.traceId, spanId: $0) } }
        let alreadyTaken = await cache.taken(keys.compactMap { $0 })
        var seen: Set<ActiveSpanCache.SpanKey> = []
        seen.reserveCapacity(valid.count)
        var taken: [Span] = []
        taken.reserveCapacity(valid.count)
        for (span, key) in zip(valid, keys) {
            if let key {
                guard !alreadyTaken.contains(key), seen.insert(key).inserted else {
                    outcome.duplicates += 1
                    continue
                }
            }
            taken.append(span)
        }
        guard !taken.isEmpty else { return outcome }
        let recorded = try await logs.append(taken, operation: "exportSpans", request: request, started: started, time: now)
        outcome.accepted = recorded.accepted
        return outcome
    }
}
