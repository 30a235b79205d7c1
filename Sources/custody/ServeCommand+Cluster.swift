import ArgumentParser
import AsyncHTTPClient
import CustodyCore
import CustodyJetStream
import CustodyLog
import Foundation
import Logging
import NIOCore

/// What a cluster-mode acknowledgement waits for (docs/operations.md, "Cluster mode").
enum ClusterDurability: String {
    /// JetStream's acknowledgement: stored by a majority of the stream's replicas (written to
    /// their files; fsynced on the servers' own timer).
    case acknowledged = "ack"
    /// The same, on servers that fsync every write (`sync_interval: always`, nats-server ≥ 2.10,
    /// `sync_always` in `/varz`): checked at start, refused otherwise.
    case fsync
}

extension ServeCommand {
    /// The runtime of cluster mode: the log on the JetStream stream `cluster` names (created or
    /// checked), the projections and signing key in the data directory as usual.
    static func clusterRuntime(
        _ cluster: ClusterSettings,
        settings: Settings,
        store: (any ProjectionStore)?,
        configuration: CoreRuntime.Configuration,
        logger: Logger,
        liveEncoding: LiveEncoding
    ) async throws -> (CoreRuntime, ClusterPresence, String) {
        if cluster.durability == .fsync {
            try await checkSyncAlways(cluster.monitorURLs)
        }
        let nodeName = cluster.nodeName ?? "\(ProcessInfo.processInfo.hostName)-\(settings.port)"
        var logConfiguration = JetStreamLog.Configuration(urls: cluster.urls, stream: cluster.stream, replicas: cluster.replicas, nodeName: nodeName)
        // Retention purges the stream's oldest messages in runs of about a segment's size.
        logConfiguration.allowsRetention = settings.retention.isEnabled
        logConfiguration.retentionRunBytes = settings.segmentBytes
        let log = try await JetStreamLog.open(logConfiguration, logger: logger)
        var configuration = configuration
        let lease: JetStreamLease
        let nodes: KeyValueBucket
        do {
            lease = try await JetStreamLease.open(name: "work", log: log, logger: logger)
            nodes = try await log.keyValueBucket(ClusterPresence.bucketSuffix)
        } catch {
            await log.close()
            throw error
        }
        configuration.lease = lease
        configuration.peers = ClusterPeers(bucket: nodes, nodeName: nodeName)
        let runtime = try await CoreRuntime.open(
            log: log,
            projectionsIn: settings.dataDirectory,
            store: store,
            configuration: configuration,
            logger: logger,
            liveEncoding: liveEncoding
        )
        let presence = ClusterPresence(log: log, bucket: nodes, runtime: runtime, lease: lease, logger: logger)
        let line =
            "Cluster mode: node \(nodeName), \(log.openingSummary); acknowledgements wait for \(cluster.durability == .fsync ? "a majority's fsync" : "a majority of the replicas")"
        return (runtime, presence, line)
    }

    /// Refuses unless every server at `urls` reports `sync_always` in its `/varz` (JetStream's
    /// `sync_interval: always`).
    static func checkSyncAlways(_ urls: [String]) async throws {
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        do {
            try await checkSyncAlways(urls, client: client)
        } catch {
            try? await client.shutdown()
            throw error
        }
        try? await client.shutdown()
    }

    private static func checkSyncAlways(_ urls: [String], client: HTTPClient) async throws {
        for base in urls {
            let url = base.hasSuffix("/varz") ? base : base + "/varz"
            let request = HTTPClientRequest(url: url)
            let body: Data
            do {
                let response = try await client.execute(request, timeout: .seconds(5))
                body = Data(try await response.body.collect(upTo: 4 << 20).readableBytesView)
            } catch {
                throw ValidationError("--durability fsync: cannot read \(url): \(error)")
            }
            let object = try? JSONSerialization.jsonObject(with: body) as? [String: Any]
            let jetstream = object?["jetstream"] as? [String: Any]
            let config = jetstream?["config"] as? [String: Any]
            guard config?["sync_always"] as? Bool == true else {
                let version = object?["version"] as? String ?? "unknown"
                throw ValidationError(
                    "--durability fsync: the server at \(base) (nats-server \(version)) does not fsync every write (no sync_always in /varz; it needs nats-server 2.10 or later with jetstream { sync_interval: always })"
                )
            }
        }
    }
}

/// Checkpoints and the GitHub outbox run on the node holding this lease.
extension JetStreamLease: WorkLease {}
