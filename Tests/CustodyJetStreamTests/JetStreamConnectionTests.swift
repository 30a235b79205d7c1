import CustodyJetStream
import CustodyLogTesting
import Foundation
import Testing

/// Three real `nats-server` processes (Debian's, JetStream on, clustered) on loopback ports, each
/// with its own store directory under a temporary directory; stopped (SIGKILL) and removed by
/// ``stop()``.
final class JetStreamCluster {
    let directory: TemporaryDirectory
    let clientPorts: [Int]
    let processes: [Process]

    var urls: String { clientPorts.map { "nats://127.0.0.1:\($0)" }.joined(separator: ",") }

    init(nodes: Int = 3) throws {
        let directory = TemporaryDirectory("jetstream")
        // Ports from a range per process, so that parallel test processes do not collide.
        let base = 20_000 + Int(getpid() % 2_000) * 10
        let clientPorts = (0..<nodes).map { base + $0 }
        let routePorts = (0..<nodes).map { base + 5 + $0 }
        let routes = routePorts.map { "nats-route://127.0.0.1:\($0)" }.joined(separator: ",")
        self.directory = directory
        self.clientPorts = clientPorts
        processes = try (0..<nodes).map { node in
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/sbin/nats-server")
            process.arguments = [
                "--jetstream", "--store_dir", directory.file("node-\(node)"),
                "--addr", "127.0.0.1", "--port", "\(clientPorts[node])",
                "--server_name", "n\(node)", "--cluster_name", "custody-test",
                "--cluster", "nats://127.0.0.1:\(routePorts[node])", "--routes", routes,
            ]
            process.standardOutput = try ChildProcess.outputFile(directory.file("node-\(node).log"))
            process.standardError = process.standardOutput
            try process.run()
            return process
        }
    }

    func stop() {
        for process in processes where process.isRunning { kill(process.processIdentifier, SIGKILL) }
        for process in processes { process.waitUntilExit() }
        directory.remove()
    }
}

@Suite(.serialized) struct JetStreamConnectionTests {
    /// Connects once the cluster has elected a meta leader and a stream can be created: polls,
    /// for at most 20 s.
    static func connectAndCreate(_ cluster: JetStreamCluster, stream: String) async throws -> (JetStreamConnection, JetStreamConnection.StreamInfo) {
        let deadline = ContinuousClock.now + .seconds(20)
        var lastError: (any Error)?
        while ContinuousClock.now < deadline {
            do {
                let connection = try await JetStreamConnection.connect(to: cluster.urls)
                let info = try await connection.addStream(
                    name: stream,
                    subjects: ["\(stream.lowercased()).>"],
                    replicas: 3,
                    duplicateWindow: 120_000_000_000
                )
                return (connection, info)
            } catch {
                lastError = error
                try await Task.sleep(for: .milliseconds(100))
            }
        }
        throw lastError ?? JetStreamConnectionFailure.noCluster
    }

    enum JetStreamConnectionFailure: Error { case noCluster }

    @Test func aReplicatedStreamTakesMessagesOnceAndFencesStaleWriters() async throws {
        let cluster = try JetStreamCluster()
        defer { cluster.stop() }
        let (connection, created) = try await Self.connectAndCreate(cluster, stream: "CUSTODY")
        #expect(created.replicas == 3 && created.fileStorage && created.denyDelete && created.denyPurge)
        #expect(created.duplicateWindow == 120_000_000_000)

        // Messages get consecutive sequences and read back as written.
        var sequences: [UInt64] = []
        for i in 0..<20 {
            let ack = try await connection.publish(subject: "custody.log", data: Array("batch \(i)".utf8), messageID: "m-\(i)")
            #expect(!ack.duplicate)
            sequences.append(ack.sequence)
        }
        #expect(sequences == Array(1...20))
        for (i, sequence) in sequences.enumerated() {
            #expect(try await connection.message(stream: "CUSTODY", sequence: sequence) == Array("batch \(i)".utf8))
        }
        #expect(try await connection.message(stream: "CUSTODY", sequence: 99) == nil)

        // A retry with the same message id (an unknown outcome) is not stored twice.
        let retried = try await connection.publish(subject: "custody.log", data: Array("batch 7".utf8), messageID: "m-7")
        #expect(retried.duplicate && retried.sequence == 8)

        // The expected-last-sequence fence: a writer that has not seen message 20 is refused.
        let fenced = try await connection.publish(subject: "custody.log", data: [1], messageID: "fenced-ok", expectedLastSequence: 20)
        #expect(fenced.sequence == 21)
        do {
            _ = try await connection.publish(subject: "custody.log", data: [2], messageID: "fenced-stale", expectedLastSequence: 20)
            Issue.record("a stale writer was not fenced")
        } catch let error as JetStreamError {
            #expect(error.jetStreamCode == 10071, "\(error)")
        }

        let info = try #require(try await connection.streamInfo("CUSTODY"))
        #expect(info.lastSequence == 21 && info.messages == 21)
        #expect(info.leader != nil)
        #expect(try await connection.streamInfo("NO_SUCH_STREAM") == nil)
        await connection.close()
    }
}
