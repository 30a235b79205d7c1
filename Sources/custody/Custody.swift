import ArgumentParser
import Logging

@main
struct Custody: AsyncParsableCommand {
    /// Diagnostics go to stderr (stdout carries results); `CUSTODY_LOG_LEVEL` sets the level.
    static func bootstrapLogging() {
        let level = ProcessEnvironment.value("CUSTODY_LOG_LEVEL").flatMap(Logger.Level.init(rawValue:)) ?? .notice
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
    }

    static func main() async {
        bootstrapLogging()
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }

    static let configuration = CommandConfiguration(
        commandName: "custody",
        abstract: "The control plane and chain-of-custody record for a fleet of worker services.",
        discussion: "Every operation is an event in one durable, append-only, LZ4-compressed segment log.",
        subcommands: [
            ServeCommand.self, DemoCommand.self, WorkerCommand.self, ReplayCommand.self, TailCommand.self, TraceCommand.self, RebuildCommand.self,
            LogCommand.self, BenchCommand.self, ClusterCommand.self, BackupCommand.self, RestoreCommand.self, QueryCommand.self,
        ]
    )
}

/// Options every command that works on a data directory takes.
struct DataDirectoryOptions: ParsableArguments {
    @Option(name: .customLong("data-dir"), help: "The data directory (default: $CUSTODY_DATA_DIR, else ./custody-data).")
    var dataDirectory: String?

    var path: String {
        dataDirectory ?? ProcessEnvironment.value("CUSTODY_DATA_DIR") ?? "./custody-data"
    }
}
