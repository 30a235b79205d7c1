import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import UnixSignals

/// `custody worker`: one simulated factory (docs/operations.md).
struct WorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Run a simulated factory: serves SimOps /simulate, and with --generate emits realistic traffic.",
        discussion: """
            The worker records its spans through the Custody SDK (batched, never blocking) and calls the orchestrator's \
            TaskOps and DeliveryOps with before_rpc/after_rpc spans around each call. For live replay, name it in the \
            server's workers map: custody serve --worker NAME=http://127.0.0.1:PORT. CUSTODY_TOKEN is sent as a bearer \
            token when set.
            """
    )

    @Option(help: "The worker's name: the source of its spans (e.g. agent-factory).") var name: String
    @Option(help: "The port of its SimOps endpoint (default 9101; 0 picks a free one).") var port = 9101
    @Option(help: "The address to listen on.") var host = "127.0.0.1"
    @Option(name: .customLong("rpc-port"), help: "Also serve SimOps over gRPC on this port (0 picks a free one).") var rpcPort: Int?
    @Option(help: "Custody's URL (default $CUSTODY_SERVER, else http://127.0.0.1:8787).") var orchestrator: String?
    @Option(help: "Generate this many flows (an order's task, start to end) per second.") var generate: Double?

    func validate() throws {
        guard !name.isEmpty, name.utf8.count <= 128 else { throw ValidationError("--name must be 1–128 bytes") }
        guard (0...65535).contains(port) else { throw ValidationError("--port must be 0–65535") }
        if let rpcPort, !(0...65535).contains(rpcPort) { throw ValidationError("--rpc-port must be 0–65535") }
        if let generate, !(generate > 0 && generate <= 10_000) { throw ValidationError("--generate takes a rate from 0 to 10000 flows/s") }
    }

    func run() async throws {
        let logger = Logger(label: "custody.worker.\(name)")
        let factory = SimulatedFactory(
            name: name,
            host: host,
            port: port,
            orchestrator: ServerURL.resolve(orchestrator),
            token: ProcessEnvironment.value("CUSTODY_TOKEN"),
            rate: generate ?? 0,
            logger: logger
        )
        let name = name
        let services = factory.services(rpcPort: rpcPort) { port in
            writeAll(STDOUT_FILENO, "Worker \(name) is serving SimOps over gRPC on grpc://\(factory.host):\(port)\n")
        } onListening: { port in
            writeAll(STDOUT_FILENO, "Worker \(name) is serving SimOps on http://\(factory.host):\(port)/simulate\n")
        }
        let group = ServiceGroup(
            configuration: .init(services: services.map { .init(service: $0) }, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        )
        do {
            try await group.run()
        } catch {
            printError("custody: the worker stopped: \(error)")
            throw ExitCode(1)
        }
    }
}
