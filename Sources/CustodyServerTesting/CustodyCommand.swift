import CustodyLogTesting
import Foundation

/// The `custody` executable run as a child process, for tests of what a person types.
public struct CustodyCommand {
    public var process: Process
    public let outputPath: String
    public let errorPath: String

    /// Starts `custody arguments…` with `environment` added to this process's.
    public static func start(_ arguments: [String], environment: [String: String] = [:]) throws -> CustodyCommand {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CustodyExecutable.path)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("custody-cmd-\(UUID().uuidString)").path
        let command = CustodyCommand(process: process, outputPath: base + ".out", errorPath: base + ".err")
        process.standardOutput = try ChildProcess.outputFile(command.outputPath)
        process.standardError = try ChildProcess.outputFile(command.errorPath)
        process.standardInput = FileHandle.nullDevice
        try process.run()
        return command
    }

    /// Runs `custody arguments…` to its end: exit status, standard output and standard error.
    public static func run(_ arguments: [String], environment: [String: String] = [:]) async throws -> (status: Int32, output: String, error: String)
    {
        let command = try start(arguments, environment: environment)
        try await ChildProcess.exit(command.process)
        defer { command.removeFiles() }
        return (command.process.terminationStatus, command.output, command.error)
    }

    public var output: String { (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "" }

    public var error: String { (try? String(contentsOfFile: errorPath, encoding: .utf8)) ?? "" }

    /// For a failed test's record: whether the process runs or how it ended, and the last
    /// `lines` lines of its standard error — from where it says it crashed, when it did (a
    /// crashed process stays "running" while it writes its backtrace).
    public func diagnosis(lines: Int = 40) -> String {
        let state =
            process.isRunning
            ? "running (pid \(process.processIdentifier))"
            : "ended: \(process.terminationReason == .uncaughtSignal ? "signal" : "status") \(process.terminationStatus)"
        let all = error.split(separator: "\n", omittingEmptySubsequences: false)
        let crash = all.firstIndex { $0.contains("Fatal error") || $0.contains("Program crashed") }
        let shown = crash.map { all[max(all.startIndex, $0 - 5)...].prefix(150) } ?? all.suffix(lines)
        return "\(state)\n\(shown.joined(separator: "\n"))"
    }

    /// ``diagnosis(lines:)`` once a process that says it crashed has finished writing its
    /// backtrace (at most 30 s).
    public func settledDiagnosis(lines: Int = 40) async -> String {
        let deadline = ContinuousClock.now + .seconds(30)
        while process.isRunning && error.contains("Program crashed") && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(200))
        }
        return diagnosis(lines: lines)
    }

    /// `custody serve` started on free ports: the command, once it prints its URL, and the URL.
    public static func serve(
        _ directory: String,
        _ extra: [String] = [],
        environment: [String: String] = [:]
    ) async throws -> (CustodyCommand, String) {
        let command = try start(
            ["serve", "--data-dir", directory, "--port", "0", "--rpc-port", "0", "--otlp-grpc-port", "0", "--otlp-http-port", "0"] + extra,
            environment: environment
        )
        let text = try await ChildProcess.text(of: command.outputPath, containing: "Dashboard:", seconds: 30)
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("Custody is listening on http://") }),
            let url = line.split(separator: " ").last
        else {
            command.process.terminate()
            try await ChildProcess.exit(command.process)
            throw CommandFailed(message: "custody serve did not start: \(command.error)")
        }
        return (command, String(url.dropLast(url.hasSuffix("/") ? 1 : 0)))
    }

    /// SIGTERM (a clean stop), then waits for the exit.
    public func stop() async throws {
        process.terminate()
        try await ChildProcess.exit(process)
    }

    public func removeFiles() {
        try? FileManager.default.removeItem(atPath: outputPath)
        try? FileManager.default.removeItem(atPath: errorPath)
    }

    public struct CommandFailed: Error, CustomStringConvertible {
        public var message: String
        public init(message: String) { self.message = message }
        public var description: String { message }
    }
}
