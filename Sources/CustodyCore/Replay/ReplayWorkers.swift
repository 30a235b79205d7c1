/// A worker's SimOps `simulateOperation` call (docs/api.md "Workers (SimOps)"): the worker appends a
/// `sim_replay` span under `traceId` and answers.
public struct SimulationCall: Sendable, Hashable {
    /// The replay's new trace, under which the worker records its `sim_replay` span.
    public var traceId: String
    /// The trace being replayed.
    public var originalTrace: String
    public var operation: String
    /// The original span's `details`, as it was recorded.
    public var details: JSONText?

    public init(traceId: String, originalTrace: String, operation: String, details: JSONText?) {
        self.traceId = traceId
        self.originalTrace = originalTrace
        self.operation = operation
        self.details = details
    }
}

/// The workers a live replay dispatches to, found by their `source` name (the server's `workers`
/// configuration). An adapter implements the transport (HTTP `POST /simulate` today); the core
/// only decides when to call and records what happened.
public protocol ReplayWorkers: Sendable {
    /// Whether a worker named `source` is configured.
    func serves(_ source: String) -> Bool
    /// Calls the worker's `simulateOperation`. Returns the duration the worker reported, if any;
    /// throws when the worker failed, refused, or did not answer in time (the error's description
    /// is recorded in the replay's `replay_error` span, so it must hold no secret).
    func simulate(_ call: SimulationCall, on worker: String) async throws -> Double?
}

/// A worker call that failed, in words fit for a `replay_error` span.
public struct ReplayWorkerError: Error, CustomStringConvertible, Sendable {
    public var description: String

    public init(_ description: String) {
        self.description = description
    }
}
