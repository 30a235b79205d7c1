import ArgumentParser
import CustodyCore
import CustodyLog
import Foundation

struct RebuildCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rebuild",
        abstract: "Rebuild every projection from the log (offline), with progress, and print events/s.",
        discussion: """
            Reads the log from its first seq into a fresh database file next to projections.sqlite and \
            swaps it in atomically. The server must not be running on the data directory.
            """
    )

    @OptionGroup var data: DataDirectoryOptions
    @Flag(help: "Print the report as JSON.") var json = false

    func run() async throws {
        let directory = data.path
        let report = try await awaitingCleanErrors {
            let log = try await SegmentLog.open(directory: directory)
            let head = await log.lastSeq
            let progress = ProgressLine(total: Int(head), unit: "events")
            do {
                let report = try await ProjectionRebuild.rebuild(log: log, databasePath: ProjectionPaths.database(in: directory)) { applied, _ in
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
}
