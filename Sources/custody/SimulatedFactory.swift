import CustodyClient
import Foundation
import Hummingbird
import Logging
import ServiceLifecycle

/// A simulated factory (`custody worker`, `custody demo`): a worker built on the SDK as a real
/// one would be. It serves SimOps (`POST /simulate`, so live replay can dispatch to it) and, with a
/// rate, generates realistic traffic: orders with tasks, status changes, `before_rpc` /
/// `after_rpc` spans around every call to Custody, nested work spans, occasional factory errors
/// and follow-ups, finalized deliveries.
struct SimulatedFactory {
    let name: String
    let host: String
    let port: Int
    /// Flows (one order's task, start to end) per second; 0 serves SimOps only.
    let rate: Double
    let tracer: WorkerTracer
    let logger: Logger

    init(name: String, host: String = "127.0.0.1", port: Int, orchestrator: String, token: String?, rate: Double, logger: Logger) {
        self.name = name
        self.host = host
        self.port = port
        self.rate = rate
        let client = CustodyClient(baseURL: orchestrator, token: token)
        var exporting = SpanExporter.Configuration()
        exporting.tracePrefix = "\(name)-export"
        self.tracer = WorkerTracer(source: name, client: client, exporter: SpanExporter(client: client, configuration: exporting, logger: logger))
        self.logger = logger
    }

    /// The services to run: the SimOps server (HTTP, and gRPC on `rpcPort` when given), the span
    /// exporter, and the traffic generator.
    func services(
        rpcPort: Int? = nil,
        onRPCListening: @escaping @Sendable (Int) async -> Void = { _ in },
        onListening: @escaping @Sendable (Int) async -> Void = { _ in }
    ) -> [any Service] {
        let router = Router()
        let tracer = tracer
        router.post("/simulate") { request, context -> Response in
            let call: SimulationRequest
            do {
                call = try SimulationRequest(json: try await request.body.collect(upTo: 1 << 20).readableBytesView)
            } catch {
                return Self.answer(status: .badRequest, ["ok": false, "error": "the body must be {trace_id, original_trace, operation, details}"])
            }
            do {
                let answer = try await tracer.simulateOperation(call)
                return Self.answer(status: .ok, ["ok": true, "duration_ms": .number(answer.durationMs ?? 0)])
            } catch {
                return Self.answer(status: .badGateway, ["ok": false, "error": .string("recording the simulation failed: \(error)")])
            }
        }
        router.get("/healthz") { _, _ in Self.answer(status: .ok, ["ok": true, "worker": .string(tracer.source)]) }
        let app = Application(
            router: router,
            configuration: .init(address: .hostname(host, port: port), serverName: nil),
            onServerRunning: { channel in await onListening(channel.localAddress?.port ?? 0) },
            logger: logger
        )
        var services: [any Service] = [app, tracer.exporter]
        if let rpcPort { services.append(GRPCServerService.simOps(tracer: tracer, host: host, port: rpcPort, onListening: onRPCListening)) }
        if rate > 0 { services.append(TrafficGenerator(tracer: tracer, rate: rate, logger: logger)) }
        return services
    }

    static func answer(status: HTTPResponse.Status, _ body: JSON) -> Response {
        let data = (try? JSONEncoder().encode(body)) ?? Data("{}".utf8)
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}

/// Generates a factory's traffic at a rate, each flow in its own trace, at most 64 flows at once
/// (beyond that a due flow is skipped). Waits for Custody to answer before starting; ends on
/// graceful shutdown.
struct TrafficGenerator: Service {
    let tracer: WorkerTracer
    let rate: Double
    let logger: Logger
    /// Order ids are shared by every factory (a small pool), so orders collect tasks from
    /// several factories and ops-factory's finalize finds them.
    static let orders = (1000..<1040).map { "order-\($0)" }

    func run() async throws {
        await cancelWhenGracefulShutdown {
            await waitForCustody()
            let interval = Duration.seconds(1 / rate)
            let clock = ContinuousClock()
            var next = clock.now
            await withTaskGroup(of: Void.self) { group in
                var running = 0
                while !Task.isCancelled {
                    next = next.advanced(by: interval)
                    if next < clock.now { next = clock.now }
                    try? await clock.sleep(until: next)
                    if Task.isCancelled { break }
                    while running >= 64, await group.next() != nil { running -= 1 }
                    running += 1
                    group.addTask { await flow() }
                }
                group.cancelAll()
            }
        }
    }

    func waitForCustody() async {
        while !Task.isCancelled {
            if (try? await tracer.client.replays(limit: 1)) != nil { return }
            try? await Task.sleep(for: .milliseconds(250))
        }
    }

    /// Work that takes between `low` and `high` milliseconds.
    func work(_ low: Int, _ high: Int) async throws {
        try await Task.sleep(for: .milliseconds(Int.random(in: low...high)))
    }

    /// One order's task through this factory: plan, create the task, work on it (nested spans),
    /// then complete it — or record a factory error and fail it — sometimes with a follow-up;
    /// ops-factory finalizes deliveries.
    func flow() async {
        let orderId = Self.orders.randomElement()!
        let name = tracer.source
        let kind = name.replacingOccurrences(of: "-factory", with: "")
        do {
            try await tracer.withTrace(operation: "\(kind).handleOrder") {
                try await tracer.span("\(kind).plan") { try await work(2, 15) }
                let task = try await tracer.orchestratorCall("TaskOps.createTask") { client throws(CustodyClientError) in
                    try await client.createTask(
                        orderId: orderId,
                        payload: ["factory": .string(name), "step": .string(kind), "priority": .number(Double(Int.random(in: 1...5)))]
                    )
                }
                _ = try await tracer.orchestratorCall("TaskOps.updateTaskStatus") { client throws(CustodyClientError) in
                    try await client.updateTaskStatus(taskId: task.uuid, status: "in_progress")
                }
                let failed = Double.random(in: 0..<1) < 0.06
                do {
                    try await tracer.span("\(kind).build", details: ["task_uuid": .string(task.uuid)]) {
                        try await tracer.span("\(kind).fetchContext") { try await work(3, 20) }
                        try await tracer.span("\(kind).generate") {
                            try await work(10, 60)
                            if failed { throw SimulatedFailure(message: "\(kind) generator produced an invalid artifact") }
                        }
                        try await tracer.span("\(kind).validate") { try await work(2, 12) }
                    }
                    _ = try await tracer.orchestratorCall("TaskOps.updateTaskStatus") { client throws(CustodyClientError) in
                        try await client.updateTaskStatus(taskId: task.uuid, status: "complete")
                    }
                } catch let failure as SimulatedFailure {
                    _ = try await tracer.orchestratorCall("TaskOps.recordFactoryError") { client throws(CustodyClientError) in
                        try await client.recordFactoryError(
                            source: name,
                            message: failure.message,
                            orderId: orderId,
                            taskUUID: task.uuid,
                            errorType: "generation_failed"
                        )
                    }
                    _ = try await tracer.orchestratorCall("TaskOps.updateTaskStatus") { client throws(CustodyClientError) in
                        try await client.updateTaskStatus(taskId: task.uuid, status: "failed")
                    }
                }
                if Double.random(in: 0..<1) < 0.08 {
                    _ = try await tracer.orchestratorCall("DeliveryOps.submitOpsFollowup") { client throws(CustodyClientError) in
                        try await client.submitOpsFollowup(
                            orderId: orderId,
                            type: "review",
                            note: "\(kind) output needs a second look",
                            impact: ["low", "medium", "high"].randomElement()!
                        )
                    }
                }
                if kind == "ops", Double.random(in: 0..<1) < 0.3 {
                    _ = try await tracer.orchestratorCall("DeliveryOps.finalizeDeliveryReport") { client throws(CustodyClientError) in
                        try await client.finalizeDeliveryReport(orderId: orderId)
                    }
                }
            }
        } catch {
            logger.debug("a simulated flow failed", metadata: ["error": "\(error)"])
        }
    }
}

struct SimulatedFailure: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}
