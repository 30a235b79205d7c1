/// The other nodes that read the same log and keep their own projections (cluster mode;
/// docs/operations.md, "Retention"): retention deletes records only once each of them holds its
/// own state snapshot past them, since none of them could rebuild its projections otherwise.
///
/// Rules for an implementation:
/// - ``nodesWithoutSnapshot(through:)`` names every node seen alive whose newest state snapshot
///   ends before `seq`; a node that is not seen alive is not waited for (it refuses to start
///   once the log starts past its projections: ``CoreRuntime/start(log:store:configuration:logger:liveEncoding:)``).
/// - It throws when it cannot tell (the engine does not answer): retention then deletes nothing.
public protocol LogPeers: Sendable {
    /// The nodes seen alive whose snapshots do not reach `seq` yet; empty when all do.
    func nodesWithoutSnapshot(through seq: UInt64) async throws -> [String]
}

/// The peers of a runtime alone on its log (the embedded segment log): none.
public struct NoLogPeers: LogPeers {
    public init() {}

    public func nodesWithoutSnapshot(through seq: UInt64) async throws -> [String] { [] }
}
