import CustodyJetStream
import CustodyLogTesting
import Foundation
import Testing

@Suite(.serialized) struct JetStreamConnectionTests {
    /// Connects once the cluster has elected a meta leader and a stream can be created: polls,
    /// for at most 20 s.
    static func connectAndCreate(_ cluster: NATSCluster, stream: String) async throws -> (JetStreamConnection, JetStreamConnection.StreamInfo) {
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
        let cluster = try await NATSCluster()
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
            #expect(try await connection.message(stream: "CUSTODY", sequence: sequence)?.data == Array("batch \(i)".utf8))
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

        // The expected-last-subject-sequence fence, 0 meaning no message on the subject yet.
        let keyed = try await connection.publish(subject: "custody.key.a", data: [3], messageID: "key-1", expectedLastSubjectSequence: 0)
        #expect(keyed.sequence == 22)
        #expect(try await connection.lastSequence(stream: "CUSTODY", subject: "custody.key.a") == 22)
        #expect(try await connection.lastSequence(stream: "CUSTODY", subject: "custody.key.b") == 0)
        await #expect(throws: JetStreamError.self) {
            _ = try await connection.publish(subject: "custody.key.a", data: [4], messageID: "key-2", expectedLastSubjectSequence: 0)
        }
        let next = try await connection.publish(subject: "custody.key.a", data: [5], messageID: "key-3", expectedLastSubjectSequence: 22)
        #expect(next.sequence == 23)

        // An ordered consumer reads every message in order, each once, from where it is told.
        let subscription = try await connection.subscribeOrdered(stream: "CUSTODY", subject: "custody.>", from: 5)
        var read: [UInt64] = []
        let deadline = ContinuousClock.now + .seconds(10)
        while read.count < 19 && ContinuousClock.now < deadline {
            read += try await subscription.next(maximum: 7, timeout: .milliseconds(200)).map(\.sequence)
        }
        #expect(read == Array(5...23))
        await subscription.close()

        let info = try #require(try await connection.streamInfo("CUSTODY"))
        #expect(info.lastSequence == 23 && info.messages == 23)
        #expect(info.leader != nil)
        #expect(try await connection.streamInfo("NO_SUCH_STREAM") == nil)
        await connection.close()
    }
}
