import Foundation

/// A throwaway PostgreSQL cluster (Debian's `postgresql`): `initdb` into a temporary directory
/// and `postgres` on a loopback port, trusting local connections as the user `custody`. What
/// tests of the PostgreSQL projection schema run against; ``stop()`` stops the server
/// (immediate mode) and removes the directory. Started in about a second.
///
/// PostgreSQL refuses to run as root, so when the tests run as root the programs run as the
/// `postgres` user (`runuser`), who owns the directory.
public final class PostgreSQLServer: Sendable {
    public let directory: TemporaryDirectory
    public let port: Int
    /// The folder of `initdb` and `postgres`.
    public let binaries: String
    /// The user the server trusts and the tests connect as.
    public static let user = "custody"

    /// Creates the cluster and starts the server; returns once it accepts connections.
    public init() async throws {
        binaries = try Self.findBinaries()
        directory = TemporaryDirectory("postgresql")
        port = try Self.freePort()
        do {
            if getuid() == 0 {
                let owner = try await Self.run("/usr/bin/chown", ["-R", "postgres:postgres", directory.path], asPostgres: false)
                guard owner.status == 0 else { throw PostgreSQLServerError("chown of \(directory.path) failed: \(owner.output)") }
            }
            let created = try await Self.run(
                binaries + "/initdb",
                ["-D", directory.file("data"), "-U", Self.user, "--auth=trust", "-E", "UTF8", "--locale=C", "-N"]
            )
            guard created.status == 0 else { throw PostgreSQLServerError("initdb failed: \(created.output)") }
            try await start()
        } catch {
            stop()
            throw error
        }
    }

    /// Starts `postgres` on the cluster (again, after ``kill()``); returns once it accepts
    /// connections (at most 30 s).
    public func start() async throws {
        // `postgres` itself, not `pg_ctl start`: the server would inherit what Foundation
        // watches to learn that pg_ctl has exited, and pg_ctl would never seem to end.
        let (program, arguments) = Self.asPostgresUser(
            binaries + "/postgres",
            ["-D", directory.file("data"), "-p", String(port), "-k", directory.path, "-c", "listen_addresses=127.0.0.1"]
        )
        let process = Process()
        process.executableURL = URL(fileURLWithPath: program)
        process.arguments = arguments
        let log = try ChildProcess.outputFile(directory.file("server.log"))
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        process.currentDirectoryURL = URL(fileURLWithPath: "/")
        try process.run()
        let deadline = ContinuousClock.now + .seconds(30)
        while (try? await psql("SELECT 1")) == nil {
            guard process.isRunning, ContinuousClock.now < deadline else {
                let text = (try? String(contentsOfFile: directory.file("server.log"), encoding: .utf8)) ?? ""
                throw PostgreSQLServerError("postgres did not start: \(text)")
            }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    /// The postmaster's pid, from `postmaster.pid`.
    var postmasterPID: Int32? {
        (try? String(contentsOfFile: directory.file("data/postmaster.pid"), encoding: .utf8))?.split(separator: "\n").first.flatMap { Int32($0) }
    }

    /// Kills the server with SIGKILL — the postmaster and every backend — as a crash would, and
    /// waits until they are gone. ``start()`` starts it again on the same cluster (which then
    /// recovers from its WAL).
    public func kill() async throws {
        guard let pid = postmasterPID else { return }
        _ = try await ChildProcess.run("/usr/bin/pkill", ["-KILL", "-P", String(pid)], includingErrors: true)
        Foundation.kill(pid, SIGKILL)
        let deadline = ContinuousClock.now + .seconds(10)
        while true {
            let children = try await ChildProcess.run("/usr/bin/pgrep", ["-P", String(pid)], includingErrors: true).output
            if Foundation.kill(pid, 0) != 0 && !children.contains(where: \.isNumber) { break }
            guard ContinuousClock.now < deadline else { throw PostgreSQLServerError("postgres (pid \(pid)) did not die") }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Stops the server at once and removes its directory: SIGQUIT to the postmaster, as
    /// `pg_ctl stop -m immediate` sends (no checkpoint: the cluster is thrown away; its other
    /// processes end with it).
    public func stop() {
        if let pid = postmasterPID {
            Foundation.kill(pid, SIGQUIT)
            // Removed only once the postmaster has gone (at most 10 s): while it shuts down it
            // still removes files, and a directory emptied under it would stay behind.
            var waited = 0
            while Foundation.kill(pid, 0) == 0 && waited < 1000 {
                usleep(10_000)
                waited += 1
            }
        }
        directory.remove()
    }

    /// Runs `sql` with `psql` in database `database`, stopping at the first error: the rows it
    /// printed, unaligned, one per line, columns separated by `|`.
    public func psql(_ sql: String, database: String = "postgres") async throws -> String {
        let file = directory.file("script-\(UUID().uuidString).sql")
        try sql.write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        let result = try await Self.run(
            "/usr/bin/psql",
            ["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", String(port), "-U", Self.user, "-d", database, "-f", file],
            asPostgres: false
        )
        guard result.status == 0 else { throw PostgreSQLServerError("psql failed: \(result.output)") }
        return result.output
    }

    /// The newest PostgreSQL's programs: Debian keeps them in `/usr/lib/postgresql/VERSION/bin`.
    static func findBinaries() throws -> String {
        let root = "/usr/lib/postgresql"
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).compactMap(Int.init).sorted()
        for version in versions.reversed() where FileManager.default.isExecutableFile(atPath: "\(root)/\(version)/bin/initdb") {
            return "\(root)/\(version)/bin"
        }
        throw PostgreSQLServerError("no PostgreSQL in \(root) (make deps installs Debian's postgresql)")
    }

    /// A loopback port nothing listens on now.
    static func freePort() throws -> Int {
        let socket = Foundation.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socket >= 0 else { throw PostgreSQLServerError("socket() failed") }
        defer { close(socket) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socket, $0, length) == 0 && getsockname(socket, $0, &length) == 0 }
        }
        guard bound else { throw PostgreSQLServerError("could not find a free port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Runs a program to its end (as `postgres` when this process is root and `asPostgres`),
    /// from `/` (which `postgres` can read): exit status, and its output and errors.
    static func run(_ executable: String, _ arguments: [String], asPostgres: Bool = true) async throws -> (status: Int32, output: String) {
        let (program, programArguments) = asPostgres ? asPostgresUser(executable, arguments) : (executable, arguments)
        return try await ChildProcess.run(program, programArguments, includingErrors: true, workingDirectory: "/")
    }

    /// `executable arguments…` as the `postgres` user (`runuser`) when this process is root.
    static func asPostgresUser(_ executable: String, _ arguments: [String]) -> (String, [String]) {
        guard getuid() == 0 else { return (executable, arguments) }
        return ("/usr/sbin/runuser", ["-u", "postgres", "--", executable] + arguments)
    }
}

public struct PostgreSQLServerError: Error, CustomStringConvertible {
    public var description: String

    public init(_ description: String) {
        self.description = description
    }
}
