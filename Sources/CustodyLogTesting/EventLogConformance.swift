import CustodyLog
import NIOCore

/// The checks every ``EventLog`` implementation must pass: the guarantees ``EventLog``
/// documents, exercised through the protocol alone. A test target runs each of
/// ``checks`` against its engine (the segment log now; every later engine the same way).
///
/// The suite opens logs through ``open``: the same `name` must open the same log again after
/// ``EventLog/close()`` (a directory for the segment log, a stream for a replicated one), and a
/// new name an empty log.
public struct EventLogConformance: Sendable {
    /// A failed check: which guarantee, and what was seen.
    public struct Failure: Error, CustomStringConvertible {
        public var check: String
        public var message: String
        public var description: String { "\(check): \(message)" }
    }

    /// Opens (creating when new) the log called `name`.
    public let open: @Sendable (_ name: String) async throws -> any EventLog

    public init(open: @escaping @Sendable (_ name: String) async throws -> any EventLog) {
        self.open = open
    }

    /// Every check, by name.
    public static let checks: [String: @Sendable (EventLogConformance) async throws -> Void] = [
        "seqsAreConsecutiveFromOne": { try await $0.seqsAreConsecutiveFromOne() },
        "concurrentAppendsGetDisjointConsecutiveRanges": { try await $0.concurrentAppendsGetDisjointConsecutiveRanges() },
        "readBySeqSetReturnsEachPresentSeqOnce": { try await $0.readBySeqSetReturnsEachPresentSeqOnce() },
        "readersSeeOnlyAcknowledgedRecords": { try await $0.readersSeeOnlyAcknowledgedRecords() },
        "waitForAppendWakesOnAppendAndOnCancel": { try await $0.waitForAppendWakesOnAppendAndOnCancel() },
        "timestampsNeverDecreaseAndAreFoundByTime": { try await $0.timestampsNeverDecreaseAndAreFoundByTime() },
        "reopenKeepsAcknowledgedRecordsAndNeverReusesSeqs": { try await $0.reopenKeepsAcknowledgedRecordsAndNeverReusesSeqs() },
        "closeRefusesAppendsAndEndsWaiters": { try await $0.closeRefusesAppendsAndEndsWaiters() },
        "emptyAppendIsRefused": { try await $0.emptyAppendIsRefused() },
        "tailFollowsTheHead": { try await $0.tailFollowsTheHead() },
        "hashChainCoversEveryRecordInOrder": { try await $0.hashChainCoversEveryRecordInOrder() },
        "fencesOrderAppendsUnderOneKey": { try await $0.fencesOrderAppendsUnderOneKey() },
    ]

    public static var checkNames: [String] { checks.keys.sorted() }

    /// Runs the check called `name`.
    public func run(_ name: String) async throws {
        guard let check = Self.checks[name] else { throw Failure(check: name, message: "there is no such check") }
        try await check(self)
    }

    // MARK: Checks

    /// Seqs start at 1; an append of n records gets n consecutive seqs after the head; the head
    /// is the last acknowledged seq; what is read back is what was appended.
    public func seqsAreConsecutiveFromOne() async throws {
        let check = "seqsAreConsecutiveFromOne"
        try await withNewLog { log in
            try await expect(await log.lastSeq == 0, check, "a new log's head is \(await log.lastSeq), not 0")
            var expected: [UInt64: ByteBuffer] = [:]
            var next: UInt64 = 1
            for count in [1, 3, 5, 1, 64] {
                let payloads = (0..<count).map { Self.payload("r\(next)-\($0)") }
                let receipt = try await log.append(payloads, timestamp: nil)
                try await expect(
                    receipt.firstSeq == next && receipt.lastSeq == next + UInt64(count) - 1,
                    check,
                    "append of \(count) got \(receipt.seqs), wanted \(next)..."
                )
                for (offset, payload) in payloads.enumerated() { expected[next + UInt64(offset)] = payload }
                next += UInt64(count)
                try await expect(
                    await log.lastSeq == receipt.lastSeq,
                    check,
                    "the head is \(await log.lastSeq) after an append acknowledged up to \(receipt.lastSeq)"
                )
            }
            let records = try await Self.readAll(log, from: 1)
            try await expect(records.map(\.seq) == Array(1..<next), check, "read back seqs \(records.map(\.seq).prefix(8))…, wanted 1..<\(next)")
            for record in records {
                try await expect(record.payload == expected[record.seq], check, "record \(record.seq) reads back other bytes")
            }
            let fromMiddle = try await log.read(from: 4, maxRecords: 2)
            try await expect(fromMiddle.first?.seq == 4, check, "read(from: 4) starts at \(fromMiddle.first?.seq ?? 0)")
            try await expect(try await log.read(from: next, maxRecords: 10).isEmpty, check, "read past the head returned records")
        }
    }

    /// Concurrent appends each get a range of their own; together the ranges cover the log with no
    /// gap, and each range holds that append's records in order.
    public func concurrentAppendsGetDisjointConsecutiveRanges() async throws {
        let check = "concurrentAppendsGetDisjointConsecutiveRanges"
        try await withNewLog { log in
            let appenders = 64
            let receipts = try await withThrowingTaskGroup(of: (Int, [AppendReceipt]).self) { group in
                for appender in 0..<appenders {
                    group.addTask {
                        var receipts: [AppendReceipt] = []
                        for round in 0..<8 {
                            let count = 1 + (appender + round) % 4
                            let payloads = (0..<count).map { Self.payload("a\(appender)-r\(round)-\($0)") }
                            receipts.append(try await log.append(payloads, timestamp: nil))
                        }
                        return (appender, receipts)
                    }
                }
                var all: [(Int, [AppendReceipt])] = []
                for try await result in group { all.append(result) }
                return all
            }
            var owner: [UInt64: String] = [:]
            for (appender, list) in receipts {
                for (round, receipt) in list.enumerated() {
                    let count = 1 + (appender + round) % 4
                    try await expect(receipt.lastSeq - receipt.firstSeq + 1 == UInt64(count), check, "an append of \(count) got \(receipt.seqs)")
                    for (offset, seq) in receipt.seqs.enumerated() {
                        try await expect(owner[seq] == nil, check, "seq \(seq) was given to two appends")
                        owner[seq] = "a\(appender)-r\(round)-\(offset)"
                    }
                }
            }
            let total = UInt64(owner.count)
            try await expect(Set(owner.keys) == Set(1...total), check, "the appends' seqs are not 1...\(total)")
            let records = try await Self.readAll(log, from: 1)
            try await expect(records.count == Int(total), check, "read back \(records.count) records of \(total)")
            for record in records {
                try await expect(
                    record.payload == Self.payload(owner[record.seq] ?? ""),
                    check,
                    "record \(record.seq) does not hold its append's bytes"
                )
            }
        }
    }

    /// `read(seqs:)` returns the records at the seqs asked for, in seq order, each once, leaving
    /// out seqs the log does not hold.
    public func readBySeqSetReturnsEachPresentSeqOnce() async throws {
        let check = "readBySeqSetReturnsEachPresentSeqOnce"
        try await withNewLog { log in
            for batch in 0..<20 {
                _ = try await log.append((0..<50).map { Self.payload("s\(batch * 50 + $0 + 1)") }, timestamp: nil)
            }
            let asked: [UInt64] = [999, 3, 1000, 3, 1, 500, 2_000, 0, 51, 50, 1_000_000]
            let records = try await log.read(seqs: asked)
            try await expect(records.map(\.seq) == [1, 3, 50, 51, 500, 999, 1000], check, "read(seqs:) gave \(records.map(\.seq))")
            for record in records {
                try await expect(record.payload == Self.payload("s\(record.seq)"), check, "record \(record.seq) holds other bytes")
            }
            try await expect(try await log.read(seqs: []).isEmpty, check, "read(seqs: []) returned records")
        }
    }

    /// While appends run, a reader never sees a record that is not, in the end, acknowledged, nor
    /// a head beyond what has been acknowledged, nor a record's bytes other than its append's.
    public func readersSeeOnlyAcknowledgedRecords() async throws {
        let check = "readersSeeOnlyAcknowledgedRecords"
        try await withNewLog { log in
            let seen = try await withThrowingTaskGroup(of: [UInt64: ByteBuffer].self) { group in
                for appender in 0..<8 {
                    group.addTask {
                        for round in 0..<40 {
                            _ = try await log.append([Self.payload("w\(appender)-\(round)")], timestamp: nil)
                        }
                        return [:]
                    }
                }
                group.addTask {
                    var seen: [UInt64: ByteBuffer] = [:]
                    var next: UInt64 = 1
                    // Reads until it has seen all 320 records, as they are acknowledged.
                    while next <= 320 {
                        let records = try await log.read(from: next, maxRecords: 64)
                        for record in records { seen[record.seq] = record.payload }
                        if let last = records.last { next = last.seq + 1 } else { _ = try await log.waitForAppend(after: next - 1) }
                    }
                    return seen
                }
                var seen: [UInt64: ByteBuffer] = [:]
                for try await result in group {
                    seen.merge(result) { first, _ in first }
                }
                return seen
            }
            let head = await log.lastSeq
            try await expect(head == 320, check, "the head is \(head) after 320 acknowledged records")
            let final = Dictionary(uniqueKeysWithValues: try await Self.readAll(log, from: 1).map { ($0.seq, $0.payload) })
            for (seq, payload) in seen {
                try await expect(seq <= head, check, "a reader saw seq \(seq) past the head \(head)")
                try await expect(final[seq] == payload, check, "a reader saw other bytes at seq \(seq) than the log holds")
            }
        }
    }

    /// `waitForAppend(after:)` returns once a later record is acknowledged (at once when one is),
    /// and throws `CancellationError` when its task is cancelled.
    public func waitForAppendWakesOnAppendAndOnCancel() async throws {
        let check = "waitForAppendWakesOnAppendAndOnCancel"
        try await withNewLog { log in
            _ = try await log.append([Self.payload("first")], timestamp: nil)
            try await expect(try await log.waitForAppend(after: 0) == 1, check, "a wait after 0 with seq 1 acknowledged did not return 1 at once")
            let waiter = Task { try await log.waitForAppend(after: 1) }
            let receipt = try await log.append([Self.payload("second"), Self.payload("third")], timestamp: nil)
            let woke = try await waiter.value
            try await expect(woke >= 2 && woke <= receipt.lastSeq, check, "the waiter woke with \(woke) after seqs \(receipt.seqs)")
            let cancelled = Task { try await log.waitForAppend(after: 100) }
            cancelled.cancel()
            do {
                let value = try await cancelled.value
                throw Failure(check: check, message: "a cancelled wait returned \(value)")
            } catch is CancellationError {
            }
        }
    }

    /// Timestamps never decrease with seq, even when an append asks for an earlier one; the time
    /// lookup finds the first seq at or after a time.
    public func timestampsNeverDecreaseAndAreFoundByTime() async throws {
        let check = "timestampsNeverDecreaseAndAreFoundByTime"
        try await withNewLog { log in
            let base: Int64 = 1_800_000_000_000_000_000
            let a = try await log.append([Self.payload("t0"), Self.payload("t0b")], timestamp: base)
            let b = try await log.append([Self.payload("t1")], timestamp: base + 1_000)
            let c = try await log.append([Self.payload("t2")], timestamp: base + 500)
            let d = try await log.append([Self.payload("t3")], timestamp: base + 2_000)
            try await expect(a.timestamp == base && b.timestamp == base + 1_000, check, "explicit timestamps were not kept")
            try await expect(c.timestamp >= b.timestamp, check, "an earlier timestamp (\(c.timestamp)) was stored after \(b.timestamp)")
            let records = try await Self.readAll(log, from: 1)
            try await expect(
                zip(records, records.dropFirst()).allSatisfy { $0.timestamp <= $1.timestamp },
                check,
                "timestamps decrease along the log"
            )
            try await expect(records.first?.timestamp == base, check, "the first record's timestamp is not the one appended")
            try await expect(try await log.firstSeq(atOrAfter: base - 1) == 1, check, "lookup before the first record is not 1")
            try await expect(try await log.firstSeq(atOrAfter: base + 1) == b.firstSeq, check, "lookup of base+1 is not seq \(b.firstSeq)")
            try await expect(try await log.firstSeq(atOrAfter: base + 1_500) == d.firstSeq, check, "lookup of base+1500 is not seq \(d.firstSeq)")
            try await expect(try await log.firstSeq(atOrAfter: base + 3_000) == d.lastSeq + 1, check, "lookup past the end is not the head + 1")
        }
    }

    /// After close and open, every acknowledged record reads back the same, and the next append
    /// gets a seq above every seq given before.
    public func reopenKeepsAcknowledgedRecordsAndNeverReusesSeqs() async throws {
        let check = "reopenKeepsAcknowledgedRecordsAndNeverReusesSeqs"
        let name = Self.uniqueName()
        var log = try await open(name)
        var last: UInt64 = 0
        for round in 0..<10 { last = try await log.append([Self.payload("p\(round)"), Self.payload("q\(round)")], timestamp: nil).lastSeq }
        let before = try await Self.readAll(log, from: 1)
        await log.close()
        log = try await open(name)
        try await expect(await log.lastSeq == last, check, "the head after reopening is \(await log.lastSeq), not \(last)")
        let after = try await Self.readAll(log, from: 1)
        try await expect(after == before, check, "the records read after reopening differ")
        let next = try await log.append([Self.payload("after")], timestamp: nil)
        try await expect(next.firstSeq == last + 1, check, "the first append after reopening got \(next.firstSeq), not \(last + 1)")
        await log.close()
    }

    /// After close, appends fail with `closed` and a pending wait ends with `closed`.
    public func closeRefusesAppendsAndEndsWaiters() async throws {
        let check = "closeRefusesAppendsAndEndsWaiters"
        let log = try await open(Self.uniqueName())
        _ = try await log.append([Self.payload("x")], timestamp: nil)
        let waiter = Task { try await log.waitForAppend(after: 1) }
        // The waiter is parked once the log has it; a close before that must end it too.
        await Task.yield()
        await log.close()
        do {
            let value = try await waiter.value
            throw Failure(check: check, message: "a wait across close returned \(value)")
        } catch let error as LogError where error.code == .closed {
        }
        do {
            let receipt = try await log.append([Self.payload("y")], timestamp: nil)
            throw Failure(check: check, message: "an append after close was acknowledged at \(receipt.seqs)")
        } catch let error as LogError where error.code == .closed {
        }
    }

    /// An append of no records is refused and changes nothing.
    public func emptyAppendIsRefused() async throws {
        let check = "emptyAppendIsRefused"
        try await withNewLog { log in
            do {
                let receipt = try await log.append([], timestamp: nil)
                throw Failure(check: check, message: "an empty append was acknowledged at \(receipt.seqs)")
            } catch let error as LogError where error.code == .invalidArgument {
            }
            try await expect(await log.lastSeq == 0, check, "an empty append moved the head")
        }
    }

    /// ``EventLog/records(from:)`` yields every record from a seq on, including ones appended
    /// while it waits, and ends when the log closes.
    public func tailFollowsTheHead() async throws {
        let check = "tailFollowsTheHead"
        let log = try await open(Self.uniqueName())
        _ = try await log.append((1...5).map { Self.payload("h\($0)") }, timestamp: nil)
        let tail = Task {
            var seqs: [UInt64] = []
            for try await records in log.records(from: 3) {
                seqs += records.map(\.seq)
                if seqs.last ?? 0 >= 20 { break }
            }
            return seqs
        }
        for seq in 6...20 { _ = try await log.append([Self.payload("h\(seq)")], timestamp: nil) }
        let seqs = try await tail.value
        try await expect(seqs == Array(3...20), check, "the tail yielded \(seqs), wanted 3...20")
        // A tail waiting at the head ends when the log closes.
        let waiting = Task {
            var count = 0
            for try await records in log.records(from: 21) { count += records.count }
            return count
        }
        await log.close()
        try await expect(try await waiting.value == 0, check, "a tail at the head yielded records across close")
    }

    // MARK: Helpers

    /// The hash chain is SHA-256 over every record in seq order (``ChainValue``): each receipt
    /// carries the value after its append's last record, the head the value after the last
    /// record, and ``EventLog/chainValue(after:)`` the value after any seq, across reopens.
    public func hashChainCoversEveryRecordInOrder() async throws {
        let check = "hashChainCoversEveryRecordInOrder"
        let name = Self.uniqueName()
        var log = try await open(name)
        do {
            try await expect(await log.chainHead == ChainHead(seq: 0, chain: .zero), check, "a new log's chain head is not (0, zero)")
            let appendingTo = log
            let receipts = try await withThrowingTaskGroup(of: [AppendReceipt].self) { group in
                for appender in 0..<16 {
                    group.addTask {
                        var receipts: [AppendReceipt] = []
                        for round in 0..<6 {
                            let payloads = (0...(appender + round) % 3).map { Self.payload("c\(appender)-\(round)-\($0)") }
                            receipts.append(try await appendingTo.append(payloads, timestamp: nil))
                        }
                        return receipts
                    }
                }
                var all: [AppendReceipt] = []
                for try await list in group { all += list }
                return all
            }
            var expected: [UInt64: ChainValue] = [0: .zero]
            var value = ChainValue.zero
            for record in try await Self.readAll(log, from: 1) {
                value = value.next(record)
                expected[record.seq] = value
            }
            for receipt in receipts {
                try await expect(receipt.chain == expected[receipt.lastSeq], check, "the receipt of \(receipt.seqs) carries another chain value")
            }
            let head = await log.chainHead
            try await expect(head == ChainHead(seq: await log.lastSeq, chain: value), check, "the chain head is not the value after the last record")
            for seq in stride(from: UInt64(0), through: head.seq, by: 7) {
                let found = try await log.chainValue(after: seq)
                try await expect(found == expected[seq], check, "chainValue(after: \(seq)) is \(found?.hex ?? "nil")")
            }
            await log.close()
            log = try await open(name)
            let more = try await log.append([Self.payload("after reopen")], timestamp: nil)
            let after = value.next(seq: more.lastSeq, bytes: Self.payload("after reopen"))
            try await expect(more.chain == after, check, "after a reopen the chain does not go on from the value before it")
            try await expect(try await log.chainValue(after: head.seq) == value, check, "after a reopen the value after \(head.seq) changed")
            await log.close()
        } catch {
            await log.close()
            throw error
        }
    }

    /// ``AppendFence``: the first append under a new key passes with 0; each later one passes
    /// only when it names a seq of the last append under the key; a failed fence appends
    /// nothing; of concurrent appends that name the same last append, exactly one passes; keys do
    /// not fence each other; unfenced appends do not move a key.
    public func fencesOrderAppendsUnderOneKey() async throws {
        let check = "fencesOrderAppendsUnderOneKey"
        try await withNewLog { log in
            func fenced(_ key: String, _ lastSeq: UInt64, _ text: String) async throws -> AppendReceipt? {
                do {
                    return try await log.append(
                        [Self.payload(text), Self.payload(text + "+")],
                        timestamp: nil,
                        fence: AppendFence(key: key, lastSeq: lastSeq)
                    )
                } catch let error as LogError where error.code == .fenced {
                    return nil
                }
            }
            guard let first = try await fenced("task:a", 0, "a1") else { throw Failure(check: check, message: "a new key's first fence (0) failed") }
            try await expect(try await fenced("task:a", 0, "a-stale") == nil, check, "a second append under a key expecting none passed")
            _ = try await log.append([Self.payload("unfenced")], timestamp: nil)
            guard let second = try await fenced("task:a", first.lastSeq, "a2") else {
                throw Failure(check: check, message: "a fence naming the last append's last seq failed")
            }
            try await expect(try await fenced("task:a", first.firstSeq, "a-old") == nil, check, "a fence naming an older append passed")
            try await expect(try await fenced("task:b", 0, "b1") != nil, check, "another key's first fence failed")
            guard let third = try await fenced("task:a", second.firstSeq, "a3") else {
                throw Failure(check: check, message: "a fence naming the last append's first seq failed")
            }
            let racing = try await withThrowingTaskGroup(of: AppendReceipt?.self) { group in
                for racer in 0..<8 { group.addTask { try await fenced("task:a", third.lastSeq, "race\(racer)") } }
                var passed: [AppendReceipt] = []
                for try await receipt in group { if let receipt { passed.append(receipt) } }
                return passed
            }
            try await expect(racing.count == 1, check, "\(racing.count) of 8 racing appends expecting the same last append passed")
            let texts = try await Self.readAll(log, from: 1).map { String(buffer: $0.payload) }
            try await expect(
                texts.filter { !$0.hasSuffix("+") } == ["a1", "unfenced", "a2", "b1", "a3"]
                    + racing.map { _ in texts.first { $0.hasPrefix("race") } ?? "" },
                check,
                "the log holds \(texts)"
            )
            try await expect(!texts.contains { $0.hasPrefix("a-") }, check, "an append whose fence failed is in the log")
        }
    }

    static func payload(_ text: String) -> ByteBuffer { ByteBuffer(string: text) }

    static func uniqueName() -> String {
        "conformance-\(UInt64.random(in: 0...UInt64.max))"
    }

    /// Every record from `seq` to the head.
    static func readAll(_ log: any EventLog, from seq: UInt64) async throws -> [LogRecord] {
        var records: [LogRecord] = []
        var next = seq
        while true {
            let read = try await log.read(from: next, maxRecords: 1000)
            guard let last = read.last else { return records }
            records += read
            next = last.seq + 1
        }
    }

    /// Opens a new log, runs `body` with it and closes it, whether `body` throws or not.
    func withNewLog(_ body: (any EventLog) async throws -> Void) async throws {
        let log = try await open(Self.uniqueName())
        do {
            try await body(log)
        } catch {
            await log.close()
            throw error
        }
        await log.close()
    }

    func expect(_ condition: @autoclosure () async throws -> Bool, _ check: String, _ message: @autoclosure () async -> String) async throws {
        if !(try await condition()) { throw Failure(check: check, message: await message()) }
    }
}
