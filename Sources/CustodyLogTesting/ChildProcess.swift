import Foundation
import NIOPosix

/// Child processes without blocking a thread of Swift's cooperative pool (two threads on this
/// machine: a test blocked in `waitUntilExit` or a pipe read starves the servers of other tests
/// running in parallel).
public enum ChildProcess {
    /// Threads that only wait for children and drain their pipes: blocking them never holds up a
    /// log's reads (NIO's shared pool) or a task (the cooperative pool).
    public static let waiters: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: 16)
        pool.start()
        return pool
    }()

    /// Waits until `process` has exited, on one of ``waiters``.
    public static func exit(_ process: Process) async throws {
        try await waiters.runIfActive { process.waitUntilExit() }
    }

    /// Runs `executable arguments…` to its end, its output in a file (never a pipe a blocked
    /// reader must drain): exit status and standard output — and standard error with it when
    /// `includingErrors`. `workingDirectory` is the program's own when given.
    public static func run(
        _ executable: String,
        _ arguments: [String],
        includingErrors: Bool = false,
        workingDirectory: String? = nil
    ) async throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let workingDirectory { process.currentDirectoryURL = URL(fileURLWithPath: workingDirectory) }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("custody-child-\(UUID().uuidString).out").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let output = try outputFile(path)
        process.standardOutput = output
        process.standardError = includingErrors ? output : FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        try process.run()
        try await exit(process)
        return (process.terminationStatus, (try? String(contentsOfFile: path, encoding: .utf8)) ?? "")
    }

    /// The text of `file` once it holds `needle` (at most `seconds`), as it is then.
    public static func text(of file: String, containing needle: String, seconds: Int = 10) async throws -> String {
        let deadline = ContinuousClock.now + .seconds(seconds)
        var text = ""
        while ContinuousClock.now < deadline {
            text = (try? String(contentsOfFile: file, encoding: .utf8)) ?? ""
            if text.contains(needle) { break }
            try await Task.sleep(for: .milliseconds(25))
        }
        return text
    }

    /// A new empty file for a child's output, and a handle writing to it.
    public static func outputFile(_ path: String) throws -> FileHandle {
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        return try FileHandle(forWritingTo: URL(fileURLWithPath: path))
    }
}
