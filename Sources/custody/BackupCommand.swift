import ArgumentParser
import CustodyClient
import CustodyCore
import Foundation
import Logging
import Synchronization

/// `custody backup --to DIR [--server URL | --data-dir D] [--include-key]`: a consistent copy of
/// a data directory (docs/operations.md, "Backup and restore").
struct BackupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Write a consistent copy of a data directory (online through a server, or of a stopped one) and print its head.",
        discussion: """
            With --server (or $CUSTODY_SERVER), the running server writes the copy to DIR on its own machine \
            (POST /api/admin/backup, admin role; $CUSTODY_TOKEN) while it keeps serving. Without it, the \
            data directory of --data-dir is opened (no server may be running on it) and copied, with progress. \
            A second backup to the same DIR copies only the segments it does not hold yet. The signing key is \
            copied only with --include-key. The copy is a backup once its custody-backup.json is written, last.
            """
    )

    @Option(help: "The directory to write the backup to (with --server: an absolute path on the server's machine).") var to: String
    @Option(help: "Back up through this running server (default: $CUSTODY_SERVER when set).") var server: String?
    @OptionGroup var data: DataDirectoryOptions
    @Flag(name: .customLong("include-key"), help: "Copy the signing key too (keep the backup as safe as the key).") var includeKey = false
    @Flag(help: "Print the report as JSON.") var json = false

    func run() async throws {
        if let url = server ?? ProcessEnvironment.value("CUSTODY_SERVER") {
            // The server resolves DIR on its machine: an absolute path says what it means.
            let answer = try await awaitingCleanErrors {
                try await CustodyClient.command(server: url, timeout: .seconds(3600)).backup(to: to, includeKey: includeKey)
            }
            if json {
                print(try encodeJSON(answer))
            } else {
                print(
                    "backed up to \(answer["directory"]?.stringValue ?? to): head seq \(Int(answer["head_seq"]?.numberValue ?? 0)), chain \(answer["chain"]?.stringValue ?? "?") (\(Int(answer["files_copied"]?.numberValue ?? 0)) files copied, \(Int(answer["files_kept"]?.numberValue ?? 0)) kept)"
                )
            }
            return
        }
        let directory = data.path
        let destination = URL(fileURLWithPath: to).standardizedFileURL.path
        let line = Mutex<ProgressLine?>(nil)
        let report = try await awaitingCleanErrors { () async throws -> BackupReport in
            let runtime = try await CoreRuntime.open(directory: directory, logger: Logger(label: "custody.backup"))
            do {
                let report = try await runtime.backup(to: destination, includeKey: includeKey) { done, total in
                    let bar = line.withLock { bar -> ProgressLine in
                        if let bar { return bar }
                        let made = ProgressLine(total: Int(total), unit: "bytes")
                        bar = made
                        return made
                    }
                    bar.set(Int(done))
                }
                line.withLock { $0 }?.finish()
                await runtime.close()
                return report
            } catch {
                await runtime.close()
                throw error
            }
        }
        print(json ? try encodeJSON(report) : report.text(verb: "backed up to"))
    }
}

/// `custody restore --from DIR --data-dir D`: checks a backup and installs it as a data directory.
struct RestoreCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Check a backup (its manifest, its files, `log verify` of its chain up to its head) and install it as a new data directory.",
        discussion: """
            --data-dir must not exist or be empty. A backup without custody-backup.json (interrupted) is refused. \
            A signing key in the backup goes beside the data directory (DATA_DIR.signing-key) unless one is there.
            """
    )

    @Option(help: "The backup's directory.") var from: String
    @OptionGroup var data: DataDirectoryOptions
    @Flag(help: "Print the report as JSON.") var json = false

    func run() async throws {
        let report = try await awaitingCleanErrors { try await CoreRuntime.restore(from: from, to: data.path) }
        print(json ? try encodeJSON(report) : report.text(verb: "restored into"))
    }
}

extension BackupReport {
    func text(verb: String) -> String {
        "\(verb) \(directory): head seq \(headSeq), chain \(chain); projections at seq \(projectionsAppliedSeq); \(filesCopied) files copied (\(formatBytes(bytesCopied))), \(filesKept) kept\(includesKey ? ", signing key included" : "") in \(String(format: "%.2f", seconds)) s"
    }
}
