/// A condition on an append, for writers that must see each other's writes to one thing (one
/// task's status chain, one order's report revisions) even when they run on different nodes of
/// one log: the append is made only if the last append made under ``key`` is the one that holds
/// seq ``lastSeq`` (0: no append has been made under ``key``). Otherwise it fails with `LogError`
/// code `fenced` and appends nothing.
///
/// The key means nothing to the log. Each engine checks the fence its own way: the segment log,
/// which is the only writer of its directory, against the keys appended under since it opened;
/// the JetStream log with JetStream's expected-last-subject-sequence (docs/operations.md,
/// "Cluster mode").
public struct AppendFence: Sendable, Hashable, CustomStringConvertible {
    public var key: String
    public var lastSeq: UInt64

    public init(key: String, lastSeq: UInt64) {
        self.key = key
        self.lastSeq = lastSeq
    }

    public var description: String { "\(key) at \(lastSeq)" }
}
