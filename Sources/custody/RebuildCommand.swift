import ArgumentParser
import CustodyCore
import CustodyJetStream
import CustodyLog
import Foundation

struct RebuildCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rebuild",
        abstract: "Rebuild every projection from the log (offline), with progress, and print events/s.",
        discussion: """
            Reads the log from its first seq into a fresh database file next to projections.sqlite and \
            swaps it in atomically. The server must not be running on the data directory. In cluster \
            mode (--log nats://…, --stream, --replicas as serve takes them), the log is the JetStream \
            stream, read by the one rule every node applies (docs/operations.md, "Cluster mode").
            """
    )

    @OptionGroup var data: DataDirectoryOptions
    @Option(name: .customLong("log"), help: "Cluster mode: the NATS servers, nats://host:port separated by commas (else $CUSTODY_LOG).")
    var logURLs: String?
    @Option(help: "Cluster mode: the JetStream stream (default CUSTODY, else $CUSTODY_STREAM).") var stream: String?
    @Option(help: "Cluster mode: the stream's replicas (default 3, else $CUSTODY_REPLICAS).") var replicas: Int?
    @Flag(help: "Print the report as JSON.") var json = false

    func run() async throws {
        let directory = data.path
        let report = try await awaitingCleanErrors {
            let log = try await openLog(directory)
            let head = await log.lastSeq
            let progress = ProgressLine(total: Int(head), unit: "events")
            do {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
                let report = try await ProjectionRebuild.rebuild(
                    log: log,
                    databasePath: ProjectionPaths.database(in: directory),
                    snapshots: StateSnapshots(dataDirectory: directory)
                ) { applied, _ in
                    progress.set(Int(applied))
                }
                progress.finish()
                await log.close()
                return report
            } catch {
                await log.close()
                throw error
            }
        }
        if json {
            print(try encodeJSON(report))
        } else {
            print(
                "rebuilt the projections from \(report.events) events in \(String(format: "%.2f", report.seconds)) s: \(String(format: "%.0f", report.eventsPerSecond)) events/s"
            )
        }
    }

    /// The segment log in `directory`, or in cluster mode the stream.
    func openLog(_ directory: String) async throws -> any EventLog {
        guard let urls = logURLs ?? ProcessEnvironment.value("CUSTODY_LOG") else {
            return try await SegmentLog.open(directory: directory)
        }
        let servers = urls.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        guard !servers.isEmpty, servers.allSatisfy({ $0.hasPrefix("nats://") && $0.count > 7 }) else {
            throw ValidationError("--log takes nats://host:port URLs separated by commas")
        }
        let configuration = JetStreamLog.Configuration(
            urls: servers.joined(separator: ","),
            stream: stream ?? ProcessEnvironment.value("CUSTODY_STREAM") ?? "CUSTODY",
            replicas: replicas ?? ProcessEnvironment.value("CUSTODY_REPLICAS").flatMap { Int($0) } ?? 3,
            nodeName: "rebuild-\(ProcessInfo.processInfo.processIdentifier)",
            createsStream: false
        )
        return try await JetStreamLog.open(configuration)
    }
}
