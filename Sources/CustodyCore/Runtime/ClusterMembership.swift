import CustodyLog

/// What a node of a cluster knows of the others (`GET /api/admin/cluster`, `custody cluster
/// status`; docs/operations.md, "Cluster mode"): the engine's view of the log and every node seen
/// recently. The embedded log has none (a runtime on its own is a cluster of one).
public protocol ClusterMembership: Sendable {
    /// `{"mode", "node", "stream": {…}, "nodes": [{…}], "unhealthy": […]}` as docs/api.md
    /// describes it.
    func status() async -> JSONValue
}

extension CoreRuntime {
    /// `GET /api/admin/cluster` of a runtime that is not in a cluster: this node alone.
    public func soleNodeStatus() async -> JSONValue {
        let applied = await projector.appliedSeq
        let head = await log.lastSeq
        return .object([
            "mode": .string("embedded"),
            "node": .null,
            "stream": .null,
            "nodes": .array([
                .object([
                    "name": .null, "applied_seq": .integer(Int64(applied)), "head_seq": .integer(Int64(head)),
                    "lag_events": .integer(Int64(head > applied ? head - applied : 0)), "lease_held": .bool(true),
                ])
            ]),
            "unhealthy": .array([]),
        ])
    }
}
