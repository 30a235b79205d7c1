import CustodyJetStream
import CustodyLog
import CustodyLogTesting
import NIOCore
import Testing

/// The JetStream log against three real nats-server processes on loopback (R3): the log
/// interface's conformance suite, then what only a log with many writers has to get right.
@Suite(.serialized) struct JetStreamLogTests {
    static func configuration(_ cluster: NATSCluster, stream: String, node: String = "test") -> JetStreamLog.Configuration {
        JetStreamLog.Configuration(urls: cluster.urls, stream: stream, replicas: 3, nodeName: node)
    }

    /// Every check of the conformance suite, each on a stream of its own, on one cluster.
    @Test func conformance() async throws {
        let cluster = try await NATSCluster()
        defer { cluster.stop() }
        let suite = EventLogConformance { name in
            try await JetStreamLog.open(Self.configuration(cluster, stream: name.uppercased()))
        }
        for check in EventLogConformance.checkNames {
            do {
                try await suite.run(check)
            } catch {
                Issue.record("\(check): \(error)")
            }
        }
    }

    /// Two nodes' logs on one stream, appending at once: together their receipts cover 1...n with
    /// no gap or overlap, both read back the same records with the same chain, and each one's
    /// receipts carry the chain value the records give.
    @Test func twoWritersShareOneGaplessChainedLog() async throws {
        let cluster = try await NATSCluster()
        defer { cluster.stop() }
        let first = try await JetStreamLog.open(Self.configuration(cluster, stream: "SHARED", node: "a"))
        let second = try await JetStreamLog.open(Self.configuration(cluster, stream: "SHARED", node: "b"))
        let logs = [first, second]
        let receipts = try await withThrowingTaskGroup(of: [(String, AppendReceipt)].self) { group in
            for (node, log) in logs.enumerated() {
                for appender in 0..<8 {
                    group.addTask {
                        var receipts: [(String, AppendReceipt)] = []
                        for round in 0..<25 {
                            let text = "n\(node)-a\(appender)-r\(round)"
                            receipts.append((text, try await log.append([ByteBuffer(string: text)], timestamp: nil)))
                        }
                        return receipts
                    }
                }
            }
            var all: [(String, AppendReceipt)] = []
            for try await list in group { all += list }
            return all
        }
        let total = UInt64(receipts.count)
        #expect(Set(receipts.map(\.1.firstSeq)) == Set(1...total))
        // Each node learns the other's writes by following the stream.
        for log in logs {
            while await log.lastSeq < total { _ = try await log.waitForAppend(after: await log.lastSeq) }
        }
        let records = try await logs.asyncMap { log in try await readAll(log) }
        #expect(records[0] == records[1])
        #expect(records[0].map(\.seq) == Array(1...total))
        var chain = ChainValue.zero
        var chains: [UInt64: ChainValue] = [:]
        for record in records[0] {
            chain = chain.next(record)
            chains[record.seq] = chain
        }
        let bySeq = Dictionary(uniqueKeysWithValues: records[0].map { ($0.seq, String(buffer: $0.payload)) })
        for (text, receipt) in receipts {
            #expect(bySeq[receipt.firstSeq] == text)
            #expect(receipt.chain == chains[receipt.lastSeq])
        }
        #expect(await first.chainHead == second.chainHead)
        #expect(await first.chainHead.chain == chain)
        await first.close()
        await second.close()
    }

    /// A fence holds across nodes: of two nodes appending under one key, each naming the same
    /// last append, exactly one succeeds, and the other's log knows of the winner's write when it
    /// is told it lost.
    @Test func fencesHoldAcrossNodes() async throws {
        let cluster = try await NATSCluster()
        defer { cluster.stop() }
        let first = try await JetStreamLog.open(Self.configuration(cluster, stream: "FENCED", node: "a"))
        let second = try await JetStreamLog.open(Self.configuration(cluster, stream: "FENCED", node: "b"))
        let created = try await first.append([ByteBuffer(string: "created")], timestamp: nil, fence: AppendFence(key: "task:x", lastSeq: 0))
        // The second node has not read the first's write: its own expectation of "none" fails.
        await #expect(throws: LogError.self) {
            _ = try await second.append([ByteBuffer(string: "created again")], timestamp: nil, fence: AppendFence(key: "task:x", lastSeq: 0))
        }
        #expect(await second.lastSeq >= created.lastSeq)
        for round in 0..<10 {
            let last = try await lastUnder(first, second)
            let fence = AppendFence(key: "task:x", lastSeq: last)
            async let byFirst = try? first.append([ByteBuffer(string: "update \(round) by a")], timestamp: nil, fence: fence)
            async let bySecond = try? second.append([ByteBuffer(string: "update \(round) by b")], timestamp: nil, fence: fence)
            let results = await [byFirst, bySecond]
            #expect(results.compactMap { $0 }.count == 1, "round \(round): \(results)")
        }
        await first.close()
        await second.close()
    }

    /// Retention on a stream: the purge cuts at a message, the start record lets a node opened
    /// afterwards begin there with the right chain; the other node drops what went; a fence
    /// naming a purged seq holds on both; appends go on with one chain; a stream purged by hand,
    /// without a start record, is refused; and a stream that denies purging refuses retention.
    @Test func retentionPurgesTheOldestMessagesAndNodesStartAfterThem() async throws {
        let cluster = try await NATSCluster()
        defer { cluster.stop() }
        var configuration = Self.configuration(cluster, stream: "RETAINED", node: "a")
        configuration.allowsRetention = true
        configuration.retentionRunBytes = 1
        let first = try await JetStreamLog.open(configuration)
        let second = try await JetStreamLog.open(Self.configuration(cluster, stream: "RETAINED", node: "b"))
        let keyed = try await first.append([ByteBuffer(string: "task x created")], timestamp: nil, fence: AppendFence(key: "task:x", lastSeq: 0))
        for round in 0..<9 { _ = try await first.append([ByteBuffer(string: "record \(round)"), ByteBuffer(string: "and \(round)")]) }
        let head = try await lastUnder(first, second)
        let extent = try await first.retentionExtent()
        // A run per message (1 byte), never the last message.
        #expect(extent.deletable.count == 9 && extent.deletable.last?.endSeq == head - 1)
        let cut = extent.deletable[4].endSeq
        let chainBefore = try #require(try await first.chainValue(after: cut - 1))
        let deletion = try await first.deleteRecords(before: cut)
        #expect(deletion.firstSeq == 1 && deletion.lastSeq == cut - 1 && deletion.segments == 5)
        #expect(await first.firstSeq == cut)
        #expect(try await first.read(from: 1, maxRecords: 100).first?.seq == cut)
        #expect(try await first.chainValue(after: cut - 1) == chainBefore)
        // Again: nothing more.
        #expect(try await first.deleteRecords(before: cut).segments == 0)
        // The other node notices when it asks the stream.
        _ = try await second.synchronize()
        #expect(await second.firstSeq == cut)
        // A node opened now starts at the cut with the chain value before it.
        let third = try await JetStreamLog.open(Self.configuration(cluster, stream: "RETAINED", node: "c"))
        let (thirdFirst, thirdLast) = (await third.firstSeq, await third.lastSeq)
        #expect(thirdFirst == cut && thirdLast == head)
        #expect(try await third.chainValue(after: cut - 1) == chainBefore)
        let (thirdHead, firstHead) = (await third.chainHead, await first.chainHead)
        #expect(thirdHead == firstHead)
        #expect(try await readAll(third).map(\.seq) == Array(cut...head))
        // The fence of task x names a purged seq: it holds on the node that never saw the append.
        let moved = try await third.append(
            [ByteBuffer(string: "task x moved")],
            timestamp: nil,
            fence: AppendFence(key: "task:x", lastSeq: keyed.lastSeq)
        )
        #expect(moved.firstSeq == head + 1)
        _ = try await lastUnder(first, second, third)
        let finalHead = await third.chainHead
        for log in [first, second] { #expect(await log.chainHead == finalHead) }
        await first.close()
        await second.close()
        await third.close()

        // A purge by hand, with no start record naming the new first message: refused.
        let connection = try await JetStreamConnection.connect(to: cluster.urls)
        defer { Task { await connection.close() } }
        try await connection.purgeStream("RETAINED", before: (try await connection.streamInfo("RETAINED"))!.lastSequence)
        await #expect(throws: LogError.self) { _ = try await JetStreamLog.open(Self.configuration(cluster, stream: "RETAINED", node: "d")) }
        // A stream made without retention denies purging for good: retention is refused on it.
        let plain = try await JetStreamLog.open(Self.configuration(cluster, stream: "PLAIN", node: "a"))
        await plain.close()
        var retaining = Self.configuration(cluster, stream: "PLAIN", node: "b")
        retaining.allowsRetention = true
        let refused = await #expect(throws: JetStreamError.self) { _ = try await JetStreamLog.open(retaining) }
        #expect(refused?.message.contains("denies purging") == true, "\(String(describing: refused))")
    }

    /// The seq of the newest record on both logs (both caught up).
    func lastUnder(_ logs: JetStreamLog...) async throws -> UInt64 {
        var head: UInt64 = 0
        for log in logs { head = max(head, await log.lastSeq) }
        for log in logs {
            while await log.lastSeq < head { _ = try await log.waitForAppend(after: await log.lastSeq) }
        }
        return head
    }

    func readAll(_ log: JetStreamLog) async throws -> [LogRecord] {
        var records: [LogRecord] = []
        while true {
            let read = try await log.read(from: (records.last?.seq ?? 0) + 1, maxRecords: 1000)
            if read.isEmpty { return records }
            records += read
        }
    }
}

extension Sequence where Element: Sendable {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var results: [T] = []
        for element in self { results.append(try await transform(element)) }
        return results
    }
}
