/// The right to do work that must happen on one node at a time (signed checkpoints; later the
/// GitHub outbox and retention): one engine's lease, behind one interface, so that the runtime
/// has no cluster branches (docs/architecture.md, "The two seams"; docs/operations.md, "Cluster
/// mode").
///
/// Rules for an implementation:
/// - ``run(whileHeld:)`` runs `work` only while this node holds the lease, and cancels it (and
///   waits for it to end) before the lease can have passed to another node; it acquires the lease
///   again whenever it can, running `work` anew each time, until the calling task is cancelled.
/// - ``isHeld`` is true only while `work` may run.
public protocol WorkLease: Sendable {
    /// Runs `work` whenever this node holds the lease, until cancelled.
    func run(whileHeld work: @escaping @Sendable () async -> Void) async
    /// Whether this node holds the lease now.
    var isHeld: Bool { get async }
    /// The node holding the lease as far as this node knows (nil: none, or unknown).
    var holder: String? { get async }
}

/// The lease of a runtime that is the only writer of its log (the embedded segment log): always
/// held.
public struct SoleWriterLease: WorkLease {
    public init() {}

    public func run(whileHeld work: @escaping @Sendable () async -> Void) async { await work() }
    public var isHeld: Bool { true }
    public var holder: String? { "this node" }
}
