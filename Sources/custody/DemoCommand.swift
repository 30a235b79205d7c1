import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import UnixSignals

/// `custody demo`: a server and five simulated factories generating traffic, in one process
/// (docs/operations.md). The factories listen on their own ports and talk to the server over HTTP like any
/// worker; the server's workers map names them, so live replay reaches them.
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Start a server and five simulated factories generating traffic; prints the dashboard URL."
    )

    static let factories = ["agent-factory", "data-factory", "services-factory", "ui-factory", "ops-factory"]

    @Option(name: .customLong("data-dir"), help: "The data directory (default ./custody-data).") var dataDirectory = "./custody-data"
    @Option(help: "The server's port.") var port = 8787
    @Option(name: .customLong("rpc-port"), help: "The server's gRPC port (0 picks a free one).") var rpcPort = 8788
    @Option(name: .customLong("worker-port"), help: "The first factory's port; the others follow.") var workerPort = 9101
    @Option(help: "Flows per second per factory.") var rate = 4.0

    func validate() throws {
        guard (1...65535).contains(port), (1...65530).contains(workerPort) else { throw ValidationError("ports must be 1–65535") }
        guard rate > 0, rate <= 1000 else { throw ValidationError("--rate takes 0–1000 flows/s per factory") }
    }

    func run() async throws {
        let logger = Logger(label: "custody")
        var settings = ServeCommand.Settings()
        settings.dataDirectory = dataDirectory
        settings.port = port
        settings.rpcPort = rpcPort
        // The factories talk HTTP; OTLP's default ports stay free for a `custody serve` beside it.
        settings.otlpGRPCPort = 0
        settings.otlpHTTPPort = 0
        for (offset, name) in Self.factories.enumerated() { settings.workers[name] = "http://127.0.0.1:\(workerPort + offset)" }
        let server = try await ServeCommand.application(settings: settings, logger: logger)
        var services: [any Service] = [server]
        for (offset, name) in Self.factories.enumerated() {
            let factory = SimulatedFactory(
                name: name,
                port: workerPort + offset,
                orchestrator: "http://127.0.0.1:\(port)",
                token: nil,
                rate: rate,
                logger: Logger(label: "custody.worker.\(name)")
            )
            services += factory.services()
        }
        let ports = "\(workerPort)–\(workerPort + Self.factories.count - 1)"
        writeAll(STDOUT_FILENO, "Demo: \(Self.factories.joined(separator: ", ")) on ports \(ports), \(rate) flows/s each. Ctrl-C stops it.\n")
        let group = ServiceGroup(
            configuration: .init(services: services.map { .init(service: $0) }, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        )
        do {
            try await group.run()
        } catch {
            printError("custody: the demo stopped: \(error)")
            throw ExitCode(1)
        }
    }
}
