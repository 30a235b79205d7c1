import CustodyCore
import CustodyLog
import CustodyLogTesting
import Foundation
import NIOCore
import Testing

/// Random events of every type, for property tests.
struct EventGenerator {
    var random: SplitMix64

    mutating func string(maxLength: Int = 24) -> String {
        let alphabet = Array("abcXYZ019-_.:/ éü日本🙂\"\\")
        let count = Int(random.next(upperBound: UInt64(maxLength + 1)))
        return String((0..<count).map { _ in alphabet[Int(random.next(upperBound: UInt64(alphabet.count)))] })
    }

    mutating func maybe<T>(_ make: (inout EventGenerator) -> T) -> T? {
        random.next(upperBound: 2) == 0 ? nil : make(&self)
    }

    mutating func json() -> JSONText {
        JSONValue.object(["k\(random.next(upperBound: 9))": .string(string()), "n": .integer(Int64(bitPattern: random.next()))]).jsonText
    }

    mutating func pick<T: CaseIterable>(_ type: T.Type) -> T {
        let all = Array(T.allCases)
        return all[Int(random.next(upperBound: UInt64(all.count)))]
    }

    mutating func body(_ type: EventType) -> EventBody {
        switch type {
        case .span:
            return .span(
                Span(
                    traceId: string(),
                    spanId: maybe { $0.string() },
                    parentSpanId: maybe { $0.string() },
                    source: string(),
                    stage: string(),
                    operation: string(),
                    taskUUID: maybe { $0.string() },
                    durationMs: maybe { Double($0.random.next(upperBound: 1_000_000)) / 7 },
                    timestamp: Int64(bitPattern: random.next()),
                    details: maybe { $0.json() }
                )
            )
        case .taskCreated:
            return .taskCreated(TaskCreated(uuid: string(), orderId: string(), payload: json()))
        case .taskStatusChanged:
            return .taskStatusChanged(TaskStatusChanged(uuid: string(), status: pick(TaskStatus.self), previousStatus: pick(TaskStatus.self)))
        case .factoryErrorRecorded:
            return .factoryErrorRecorded(
                FactoryErrorRecorded(
                    errorId: string(),
                    source: string(),
                    message: string(maxLength: 200),
                    orderId: maybe { $0.string() },
                    taskUUID: maybe { $0.string() },
                    errorType: maybe { $0.string() },
                    payload: maybe { $0.json() }
                )
            )
        case .followupSubmitted:
            return .followupSubmitted(
                FollowupSubmitted(id: string(), orderId: string(), type: string(), note: string(maxLength: 300), impact: pick(FollowupImpact.self))
            )
        case .deliveryFinalized:
            return .deliveryFinalized(DeliveryFinalized(orderId: string(), revision: random.next(), report: json()))
        case .githubRequested:
            return .githubRequested(
                GitHubRequested(
                    operationId: string(),
                    kind: pick(GitHubOperationKind.self),
                    idempotencyKey: string(),
                    traceId: string(),
                    params: json()
                )
            )
        case .githubAttemptFailed:
            return .githubAttemptFailed(
                GitHubAttemptFailed(
                    operationId: string(),
                    kind: pick(GitHubOperationKind.self),
                    attempt: UInt32(truncatingIfNeeded: random.next()),
                    retryAt: Int64(bitPattern: random.next()),
                    error: json()
                )
            )
        case .githubSucceeded, .githubFailed:
            let finished = GitHubFinished(
                operationId: string(),
                kind: pick(GitHubOperationKind.self),
                attempt: UInt32(truncatingIfNeeded: random.next()),
                outcome: json()
            )
            return type == .githubSucceeded ? .githubSucceeded(finished) : .githubFailed(finished)
        case .replayStarted, .replayCompleted:
            let replay = ReplayEvent(
                newTrace: string(),
                fromTrace: string(),
                mode: pick(ReplayMode.self),
                speed: Double(random.next(upperBound: 100)) / 4,
                spans: UInt32(truncatingIfNeeded: random.next()),
                status: ReplayStatus(rawValue: string())
            )
            return type == .replayStarted ? .replayStarted(replay) : .replayCompleted(replay)
        case .logLoss:
            return .logLoss(
                LogLoss(
                    firstSeq: random.next(),
                    lastSeq: random.next(),
                    segment: string(),
                    offset: Int64(bitPattern: random.next()),
                    length: Int64(bitPattern: random.next()),
                    sideFile: maybe { $0.string() },
                    reason: string(maxLength: 200),
                    recordedAt: Int64(bitPattern: random.next()),
                    chainBefore: maybe { $0.chainValue() }
                )
            )
        case .logCheckpoint:
            return .logCheckpoint(
                LogCheckpoint(
                    seq: random.next(),
                    chain: chainValue(),
                    at: Int64(bitPattern: random.next()),
                    publicKey: bytes(32),
                    nextPublicKey: maybe { $0.bytes(32) },
                    signature: bytes(64)
                )
            )
        case .logRetention:
            return .logRetention(
                LogRetention(
                    firstSeq: random.next(),
                    lastSeq: random.next(),
                    chain: chainValue(),
                    snapshot: string(),
                    bytes: Int64(bitPattern: random.next()),
                    recordedAt: Int64(bitPattern: random.next())
                )
            )
        }
    }

    mutating func bytes(_ count: Int) -> [UInt8] {
        (0..<count).map { _ in UInt8(truncatingIfNeeded: random.next()) }
    }

    mutating func chainValue() -> ChainValue {
        ChainValue(bytes: bytes(32))!
    }
}

@Suite struct EventCodecTests {
    @Test func everyEventTypeRoundTrips() throws {
        var generator = EventGenerator(random: SplitMix64(seed: 1))
        for type in EventType.allCases {
            for _ in 0..<300 {
                let body = generator.body(type)
                let bytes = EventCodec.encode(body)
                // Version 2 is only a log.loss that carries the chain value before the loss.
                var expectedVersion = EventCodec.currentVersion
                if case .logLoss(let loss) = body, loss.chainBefore != nil { expectedVersion = 2 }
                #expect(bytes.getInteger(at: 0, as: UInt8.self) == expectedVersion)
                #expect(bytes.getInteger(at: 1, as: UInt8.self) == type.rawValue)
                #expect(try EventCodec.decode(bytes) == body)
            }
            #expect(EventType(name: type.name) == type)
        }
    }

    @Test func everyTruncationIsRejected() {
        var generator = EventGenerator(random: SplitMix64(seed: 2))
        for type in EventType.allCases {
            let bytes = EventCodec.encode(generator.body(type))
            for length in 0..<bytes.readableBytes {
                #expect(throws: EventCodecError.self) { try EventCodec.decode(bytes.getSlice(at: 0, length: length)!) }
            }
        }
    }

    /// A changed byte is either rejected or decodes to an event that encodes back to exactly
    /// those bytes: the decoder never reads garbage as something else.
    @Test func everySingleByteChangeIsRejectedOrCanonical() {
        var generator = EventGenerator(random: SplitMix64(seed: 3))
        var rejected = 0
        for type in EventType.allCases {
            let bytes = EventCodec.encode(generator.body(type))
            for position in 0..<bytes.readableBytes {
                for value: UInt8 in [0x00, 0x01, 0x7F, 0x80, 0xFF, bytes.getInteger(at: position)! ^ 0x10] {
                    var mutated = bytes
                    mutated.setInteger(value, at: position)
                    if let body = try? EventCodec.decode(mutated) {
                        #expect(EventCodec.encode(body) == mutated, "\(type) byte \(position) = \(value)")
                    } else {
                        rejected += 1
                    }
                }
            }
        }
        #expect(rejected > 1000)
    }

    /// The example in docs/log-format.md.
    @Test func theDocumentedExampleIsExact() throws {
        let body = EventBody.taskStatusChanged(TaskStatusChanged(uuid: "t1", status: .complete, previousStatus: .pending))
        #expect(Array(EventCodec.encode(body).readableBytesView) == [0x01, 0x03, 0x02, 0x74, 0x31, 0x04, 0x01])
    }

    @Test func eventsRenderAsTheJSONTheyCameFrom() throws {
        let span = Span(
            traceId: "abc",
            spanId: "s1",
            source: "agent-factory",
            stage: "error",
            operation: "createAgent",
            durationMs: 12.5,
            timestamp: 1_793_739_600_123_000_000,
            details: JSONText(#"{"error":"boom","n":3}"#)
        )
        let event = Event(seq: 7, ingestedAt: 1_793_739_600_500_000_000, body: .span(span))
        let json = event.jsonValue
        #expect(
            json
                == .object([
                    "seq": .integer(7), "ingested_at": .string("2026-11-03T21:00:00.500Z"), "type": .string("span"),
                    "body": .object([
                        "trace_id": .string("abc"), "span_id": .string("s1"), "parent_span_id": .null, "source": .string("agent-factory"),
                        "stage": .string("error"), "operation": .string("createAgent"), "task_uuid": .null, "duration_ms": .number(12.5),
                        "timestamp": .string("2026-11-03T21:00:00.123Z"),
                        "details": .object(["error": .string("boom"), "n": .integer(3)]),
                    ]),
                ])
        )
        let status = Event(
            seq: 8,
            ingestedAt: 0,
            body: .taskStatusChanged(TaskStatusChanged(uuid: "t", status: .inProgress, previousStatus: .pending))
        )
        #expect(
            status.jsonValue.objectValue?["body"]
                == .object(["uuid": .string("t"), "status": .string("in_progress"), "previous_status": .string("pending")])
        )
        #expect(event.traceId == "abc" && status.traceId == nil)
    }

    @Test func randomBytesNeverCrashTheDecoder() {
        var random = SplitMix64(seed: 4)
        var accepted = 0
        for _ in 0..<50_000 {
            let count = Int(random.next(upperBound: 64))
            var bytes = ByteBuffer(bytes: (0..<count).map { _ in UInt8(truncatingIfNeeded: random.next()) })
            if count > 2 {
                bytes.setInteger(UInt8(1), at: 0)
                bytes.setInteger(UInt8(1 + random.next(upperBound: 11)), at: 1)
            }
            if (try? EventCodec.decode(bytes)) != nil { accepted += 1 }
        }
        #expect(accepted < 50_000)
    }

    @Test func unknownVersionsTypesAndTrailingBytesAreRejected() throws {
        var bytes = EventCodec.encode(.taskStatusChanged(TaskStatusChanged(uuid: "t", status: .complete, previousStatus: .pending)))
        var wrongVersion = bytes
        wrongVersion.setInteger(UInt8(3), at: 0)
        do {
            _ = try EventCodec.decode(wrongVersion)
            Issue.record("version 3 was decoded")
        } catch {
            #expect(error.reason == "unknown encoding version 3" && error.offset == 1)
        }
        // Version 2 exists only for log.loss.
        var versionTwo = bytes
        versionTwo.setInteger(UInt8(2), at: 0)
        do {
            _ = try EventCodec.decode(versionTwo)
            Issue.record("a version 2 task.status_changed was decoded")
        } catch {
            #expect(error.reason == "encoding version 2 is only used by log.loss")
        }
        var wrongType = bytes
        wrongType.setInteger(UInt8(200), at: 1)
        #expect(throws: EventCodecError.self) { try EventCodec.decode(wrongType) }
        var badStatus = bytes
        badStatus.setInteger(UInt8(9), at: 4)
        #expect(throws: EventCodecError.self) { try EventCodec.decode(badStatus) }
        bytes.writeInteger(UInt8(0))
        #expect(throws: EventCodecError.self) { try EventCodec.decode(bytes) }
    }

    /// Events go through the real log and come back as they went in, with the log's seq and time.
    @Test func eventsRoundTripThroughTheLog() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("custody-core-\(UUID().uuidString)").path
        defer { removeDataDirectory(directory) }
        let log = try await SegmentLog.open(directory: directory)
        var generator = EventGenerator(random: SplitMix64(seed: 5))
        let bodies = (0..<500).map { generator.body(EventType.allCases[$0 % EventType.allCases.count]) }
        let receipt = try await log.append(bodies.map(EventCodec.encode))
        let records = try await log.read(from: 1, maxRecords: 1000)
        let events = try records.map { record throws(EventCodecError) in try EventCodec.decode(record) }
        #expect(events.map(\.body) == bodies)
        #expect(events.map(\.seq) == Array(receipt.seqs))
        #expect(events.allSatisfy { $0.ingestedAt == receipt.timestamp })
        await log.close()
    }
}
