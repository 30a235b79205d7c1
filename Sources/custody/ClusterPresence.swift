import CustodyCore
import CustodyJetStream
import CustodyLog
import Foundation
import Logging
import ServiceLifecycle

/// The other nodes of a cluster as retention sees them (``LogPeers``): every node but this one
/// (whose pass has just built its snapshot) whose presence entry is fresh
/// (``ClusterPresence/staleAfter``) and names a snapshot before the seq asked.
struct ClusterPeers: LogPeers {
    let bucket: KeyValueBucket
    let nodeName: String

    func nodesWithoutSnapshot(through seq: UInt64) async throws -> [String] {
        let now = LogTime.now()
        var waiting: [String] = []
        for name in try await bucket.keys().sorted() where name != nodeName {
            guard let entry = try await bucket.get(name),
                case .object(let fields)? = try? JSONDecoder().decode(JSONValue.self, from: Data(entry.value))
            else { continue }
            let age = Double(now - ClusterPresence.integer(fields["seen_at_ns"])) / 1e9
            if age <= ClusterPresence.staleAfter && ClusterPresence.integer(fields["snapshot_seq"]) < Int64(seq) { waiting.append(name) }
        }
        return waiting
    }
}

/// A node's presence in a cluster: every ``beatEvery`` it writes what it has applied to the
/// key-value bucket `<stream>_NODES` (key: its name), and ``status()`` reads every node's entry
/// and the stream's state for `GET /api/admin/cluster` and `custody cluster status`.
/// A node whose entry is older than ``staleAfter`` is reported as not seen.
actor ClusterPresence: ClusterMembership, Service {
    let log: JetStreamLog
    let bucket: KeyValueBucket
    let runtime: CoreRuntime
    let lease: JetStreamLease
    let logger: Logger
    static let beatEvery: Duration = .seconds(2)
    static let staleAfter: Double = 10

    /// The bucket is `<stream>_NODES`.
    static let bucketSuffix = "NODES"

    init(log: JetStreamLog, bucket: KeyValueBucket, runtime: CoreRuntime, lease: JetStreamLease, logger: Logger) {
        self.log = log
        self.bucket = bucket
        self.runtime = runtime
        self.lease = lease
        self.logger = logger
    }

    var nodeName: String { log.configuration.nodeName }

    /// Beats until the server shuts down (gracefully or not).
    func run() async throws {
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await self.beat()
                try await Task.sleep(for: Self.beatEvery)
            }
        }
    }

    /// Writes this node's entry now.
    func beat() async {
        let entry: JSONValue = .object([
            "name": .string(nodeName),
            "applied_seq": .integer(Int64(await runtime.projector.appliedSeq)),
            "head_seq": .integer(Int64(await log.lastSeq)),
            "lease_held": .bool(await lease.isHeld),
            "snapshot_seq": .integer(Int64(runtime.retention?.snapshotSeq ?? 0)),
            "seen_at_ns": .integer(LogTime.now()),
        ])
        do {
            _ = try await bucket.set(nodeName, Array(entry.jsonText.description.utf8))
        } catch {
            logger.debug("could not write this node's presence", metadata: ["error": "\(error)"])
        }
    }

    func status() async -> JSONValue {
        var unhealthy: [JSONValue] = []
        var stream: JSONValue = .null
        let head = await log.lastSeq
        if let info = await log.streamInfo() {
            stream = .object([
                "name": .string(info.name), "replicas": .integer(Int64(info.replicas)), "leader": info.leader.map(JSONValue.string) ?? .null,
                "first_sequence": .integer(Int64(info.firstSequence)), "last_sequence": .integer(Int64(info.lastSequence)),
                "messages": .integer(Int64(info.messages)), "bytes": .integer(Int64(info.bytes)), "last_seq": .integer(Int64(head)),
            ])
        }
        // The log's failure covers a stream without a leader or without an answer.
        if let failure = await log.status().failure { unhealthy.append(.string("log: \(failure)")) }
        var nodes: [JSONValue] = []
        let now = LogTime.now()
        let holder = await lease.holder
        do {
            for name in try await bucket.keys().sorted() {
                guard let entry = try await bucket.get(name),
                    case .object(var fields)? = try? JSONDecoder().decode(JSONValue.self, from: Data(entry.value))
                else { continue }
                let applied = Self.integer(fields["applied_seq"])
                let seenAt = Self.integer(fields["seen_at_ns"])
                let age = Double(now - seenAt) / 1e9
                fields["lag_events"] = .integer(max(0, Int64(head) - applied))
                fields["seen_seconds_ago"] = .number((age * 10).rounded() / 10)
                fields["work_lease"] = .bool(name == holder)
                fields["alive"] = .bool(age <= Self.staleAfter)
                if age > Self.staleAfter { unhealthy.append(.string("node \(name) not seen for \(Int(age)) s")) }
                nodes.append(.object(fields))
            }
        } catch {
            unhealthy.append(.string("cannot read the nodes' presence: \(error)"))
        }
        if holder == nil { unhealthy.append(.string("no node holds the work lease (checkpoints, GitHub outbox)")) }
        return .object([
            "mode": .string("cluster"), "node": .string(nodeName), "stream": stream, "nodes": .array(nodes),
            "work_lease": holder.map(JSONValue.string) ?? .null, "unhealthy": .array(unhealthy),
        ])
    }

    static func integer(_ value: JSONValue?) -> Int64 {
        if case .integer(let number)? = value { return number }
        return 0
    }
}
