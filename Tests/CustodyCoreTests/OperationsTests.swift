import CustodyCore
import CustodyLog
import CustodyLogTesting
import Foundation
import NIOCore
import Synchronization
import Testing

/// A log, its projections and a running projector in a temporary directory.
struct CoreFixture {
    let directory: String
    let log: SegmentLog
    let store: SQLiteProjectionStore
    let projector: Projector
    let running: Task<Void, any Error>
    let context: CoreContext

    /// A wall clock for the log that moves a millisecond each time it is read, so that every
    /// append has a time of its own without the test sleeping.
    static func steppingClock() -> @Sendable () -> Int64 {
        let clock = SteppingClock()
        return { clock.read() }
    }

    final class SteppingClock: Sendable {
        let next = Atomic<Int64>(LogTime.now())
        func read() -> Int64 { next.add(1_000_000, ordering: .relaxed).newValue }
    }

    static func make() async throws -> CoreFixture {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("custody-ops-\(UUID().uuidString)").path
        var configuration = LogConfiguration()
        configuration.wallClock = steppingClock()
        let log = try await SegmentLog.open(directory: directory, configuration: configuration)
        let store = try SQLiteProjectionStore(path: ProjectionPaths.database(in: directory))
        let projector = Projector(log: log, store: store)
        let running = Task { try await projector.run() }
        return CoreFixture(
            directory: directory,
            log: log,
            store: store,
            projector: projector,
            running: running,
            context: CoreContext(log: log, projector: projector)
        )
    }

    func close() async {
        running.cancel()
        _ = try? await running.value
        try? store.closeDatabase()
        await log.close()
        removeDataDirectory(directory)
    }

    func events() async throws -> [Event] {
        var events: [Event] = []
        var next: UInt64 = 1
        while true {
            let records = try await log.read(from: next, maxRecords: 10_000)
            guard let last = records.last else { return events }
            events += try records.map { record throws(EventCodecError) in try EventCodec.decode(record) }
            next = last.seq + 1
        }
    }
}

@Suite struct TaskOperationsTests {
    @Test func createIsIdempotentForEqualContentAndConflictsOtherwise() async throws {
        let fixture = try await CoreFixture.make()
        let tasks = TaskOperations(context: fixture.context)
        let first = try await tasks.createTask(orderId: "o1", payload: .object(["a": .integer(1)]), uuid: "t1", request: RequestTrace(traceId: "r1"))
        #expect(first.created && first.task.status == .pending && first.task.uuid == "t1")
        let again = try await tasks.createTask(orderId: "o1", payload: .object(["a": .integer(1)]), uuid: "t1", request: RequestTrace(traceId: "r2"))
        #expect(!again.created && again.task.orderId == "o1")
        do {
            _ = try await tasks.createTask(orderId: "o1", payload: .object(["a": .integer(2)]), uuid: "t1", request: RequestTrace(traceId: "r3"))
            Issue.record("different content under an existing uuid was accepted")
        } catch {
            #expect(error.code == .conflict)
        }
        do {
            _ = try await tasks.createTask(orderId: nil, payload: .object([:]), uuid: nil, request: RequestTrace(traceId: "r4"))
            Issue.record("a task without order_id was accepted")
        } catch {
            #expect(error.field == "order_id")
        }
        do {
            _ = try await tasks.createTask(orderId: "o", payload: .array([]), uuid: nil, request: RequestTrace(traceId: "r5"))
            Issue.record("a non-object payload was accepted")
        } catch {
            #expect(error.field == "payload")
        }
        // One task.created, and a processing span per successful call.
        let events = try await fixture.events()
        #expect(events.filter { $0.type == .taskCreated }.count == 1)
        let processing = events.compactMap { event -> Span? in if case .span(let span) = event.body { span } else { nil } }
        #expect(processing.map(\.operation) == ["createTask"])
        #expect(processing.first?.traceId == "r1" && processing.first?.source == "orchestrator")
        await fixture.close()
    }

    @Test func updatingAnUnknownTaskAppendsOnlyAnErrorSpan() async throws {
        let fixture = try await CoreFixture.make()
        let tasks = TaskOperations(context: fixture.context)
        do {
            _ = try await tasks.updateTaskStatus(taskId: "missing", status: "complete", request: RequestTrace(traceId: "r"))
            Issue.record("an unknown task was updated")
        } catch {
            #expect(error.code == .taskNotFound)
        }
        do {
            _ = try await tasks.updateTaskStatus(taskId: "missing", status: "done", request: RequestTrace(traceId: "r"))
            Issue.record("an unknown status was accepted")
        } catch {
            #expect(error.code == .invalidArgument && error.field == "status")
        }
        let events = try await fixture.events()
        #expect(events.count == 1)
        guard case .span(let span) = events.first?.body else {
            Issue.record("no error span")
            await fixture.close()
            return
        }
        #expect(span.stage == "error" && span.operation == "updateTaskStatus" && span.traceId == "r")
        await fixture.close()
    }

    /// Concurrent updates of one task: each gets the status the one before it (in log order) set.
    @Test func concurrentUpdatesChainTheirPreviousStatus() async throws {
        let fixture = try await CoreFixture.make()
        let tasks = TaskOperations(context: fixture.context)
        _ = try await tasks.createTask(orderId: "o", payload: .object([:]), uuid: "t", request: RequestTrace(traceId: "r"))
        let statuses: [TaskStatus] = [.inProgress, .blocked, .complete, .failed, .cancelled, .pending]
        let results = try await withThrowingTaskGroup(of: TaskOperations.StatusChange.self) { group in
            for i in 0..<24 {
                // A separate TaskOperations value per call, on one context, as the HTTP and RPC
                // adapters would each hold their own: serialization must still hold.
                let operations = TaskOperations(context: fixture.context)
                group.addTask {
                    try await operations.updateTaskStatus(
                        taskId: "t",
                        status: statuses[i % statuses.count].rawValue,
                        request: RequestTrace(traceId: "u\(i)")
                    )
                }
            }
            var all: [TaskOperations.StatusChange] = []
            for try await result in group { all.append(result) }
            return all
        }
        #expect(results.count == 24)
        let changes = try await fixture.events().compactMap { event -> TaskStatusChanged? in
            if case .taskStatusChanged(let change) = event.body { change } else { nil }
        }
        #expect(changes.count == 24)
        var expectedPrevious = TaskStatus.pending
        for change in changes {
            #expect(change.previousStatus == expectedPrevious)
            expectedPrevious = change.status
        }
        #expect(try await tasks.getTask("t").status == changes.last?.status)
        await fixture.close()
    }

    @Test func timeTravelShowsTheTaskAsItStood() async throws {
        let fixture = try await CoreFixture.make()
        let tasks = TaskOperations(context: fixture.context)
        _ = try await fixture.log.append(ByteBuffer(string: "padding before the task"))
        let created = try await tasks.createTask(orderId: "o", payload: .object([:]), uuid: "t", request: RequestTrace(traceId: "r"))
        _ = try await tasks.updateTaskStatus(taskId: "t", status: "in_progress", request: RequestTrace(traceId: "r"))
        let afterFirst = await fixture.log.lastSeq
        // Between the two updates on the log's clock (each append reads it once, a millisecond on).
        let middle = try #require(try await fixture.log.read(from: afterFirst, maxRecords: 1).first).timestamp + 500_000
        _ = try await tasks.updateTaskStatus(taskId: "t", status: "complete", request: RequestTrace(traceId: "r"))

        #expect(try await tasks.getTask("t", asOf: .seq(created.task.createdSeq)).task.status == .pending)
        let then = try await tasks.getTask("t", asOf: .seq(afterFirst))
        #expect(then.task.status == .inProgress && then.asOfSeq == afterFirst)
        #expect(try await tasks.getTask("t", asOf: .instant(middle)).task.status == .inProgress)
        #expect(try await tasks.getTask("t", asOf: .seq(.max)).task.status == .complete)
        do {
            _ = try await tasks.getTask("t", asOf: .seq(1))
            Issue.record("a task was found before it was created")
        } catch {
            #expect(error.code == .taskNotFound)
        }
        #expect(try AsOf(parsing: "42") == .seq(42))
        #expect(throws: CoreError.self) { try AsOf(parsing: "soon") }
        await fixture.close()
    }
}

@Suite struct DeliveryOperationsTests {
    @Test func reportsGetANewRevisionOnlyWhenSomethingChanged() async throws {
        let fixture = try await CoreFixture.make()
        let tasks = TaskOperations(context: fixture.context)
        let delivery = DeliveryOperations(context: fixture.context)
        _ = try await tasks.createTask(orderId: "o", payload: .object([:]), uuid: "t1", request: RequestTrace(traceId: "r"))
        _ = try await tasks.createTask(orderId: "o", payload: .object([:]), uuid: "t2", request: RequestTrace(traceId: "r"))
        _ = try await tasks.updateTaskStatus(taskId: "t1", status: "complete", request: RequestTrace(traceId: "r"))
        let followup = try await delivery.submitOpsFollowup(
            orderId: "o",
            type: "qa",
            note: "check it",
            impact: "high",
            request: RequestTrace(traceId: "r")
        )
        #expect(followup.impact == .high)
        _ = try await LogOperations(log: fixture.log).recordLog(
            .many([SpanInput(traceId: "tr", taskUUID: "t1"), SpanInput(traceId: "tr", stage: "error", taskUUID: "t2")]),
            request: RequestTrace(traceId: "r")
        )
        _ = try await tasks.recordFactoryError(
            source: "data-factory",
            message: "oops",
            orderId: "o",
            taskUUID: nil,
            errorType: nil,
            payload: nil,
            request: RequestTrace(traceId: "r")
        )

        let first = try await delivery.finalizeDeliveryReport(orderId: "o", request: RequestTrace(traceId: "r")).objectValue
        #expect(first?["revision"] == .integer(1))
        #expect(first?["tasks"] == .object(["complete": .integer(1), "pending": .integer(1)]))
        #expect(first?["spans"] == .integer(2) && first?["error_spans"] == .integer(1) && first?["traces"] == .integer(1))
        #expect(first?["errors"] == .integer(1))
        if case .array(let followups)? = first?["followups"] { #expect(followups.count == 1) } else { Issue.record("no followups") }

        // Nothing new: the same revision, nothing appended.
        let before = await fixture.log.lastSeq
        let same = try await delivery.finalizeDeliveryReport(orderId: "o", request: RequestTrace(traceId: "r")).objectValue
        #expect(same?["revision"] == .integer(1))
        #expect(await fixture.log.lastSeq == before)
        // Something new: the next revision.
        _ = try await delivery.submitOpsFollowup(orderId: "o", type: "qa", note: "again", impact: "low", request: RequestTrace(traceId: "r"))
        #expect(try await delivery.finalizeDeliveryReport(orderId: "o", request: RequestTrace(traceId: "r")).objectValue?["revision"] == .integer(2))
        #expect(try await delivery.getReport(orderId: "o").objectValue?["revision"] == .integer(2))
        #expect(try await delivery.fetchFollowups(orderId: "o").count == 2)
        #expect(try await delivery.fetchFollowups(orderId: "o", asOf: .seq(followup.seq)).count == 1)

        do {
            _ = try await delivery.finalizeDeliveryReport(orderId: "nobody", request: RequestTrace(traceId: "r"))
            Issue.record("an unknown order was finalized")
        } catch {
            #expect(error.code == .notFound)
        }
        do {
            _ = try await delivery.submitOpsFollowup(orderId: "o", type: "qa", note: "x", impact: "huge", request: RequestTrace(traceId: "r"))
            Issue.record("an unknown impact was accepted")
        } catch {
            #expect(error.field == "impact")
        }
        await fixture.close()
    }
}
