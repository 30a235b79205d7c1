import Foundation
import Synchronization

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Real `nats-server` processes (Debian's, `/usr/sbin/nats-server`) with JetStream, clustered on
/// loopback, each with its own config file and store directory under one temporary directory:
/// what cluster-mode tests run against. ``stop()`` kills them all (SIGKILL) and removes the
/// directory; ``kill(_:)`` and ``start(_:)`` take one node down and bring it back on the same
/// store, for fault tests.
///
/// Ports come from a range chosen per cluster (``nextBasePort()``), so that clusters running at
/// once do not collide: client ports `base + i`, route ports `base + 10 + i`, monitoring ports
/// `base + 20 + i`.
public final class NATSCluster: @unchecked Sendable {
    // @unchecked Sendable: `processes` is only touched through `lock`; everything else is set
    // once in `init`.
    public let directory: TemporaryDirectory
    public let clientPorts: [Int]
    public let monitorPorts: [Int]
    public let names: [String]
    private let lock = NSLock()
    private var processes: [Process?]

    /// The servers' URLs, as `--log` takes them.
    public var urls: String { clientPorts.map { "nats://127.0.0.1:\($0)" }.joined(separator: ",") }

    /// The largest message the servers take: 8 MiB, as docs/operations.md configures it.
    public static let maximumPayload = 8 << 20

    /// Starts `nodes` servers (named `n0`, `n1`, …) and returns once each answers on its
    /// monitoring port; JetStream may still be electing its meta leader. One node runs alone (no
    /// cluster block).
    public init(nodes: Int = 3, basePort: Int? = nil) async throws {
        directory = TemporaryDirectory("nats")
        let base = basePort ?? Self.nextBasePort()
        clientPorts = (0..<nodes).map { base + $0 }
        let routePorts = (0..<nodes).map { base + 10 + $0 }
        monitorPorts = (0..<nodes).map { base + 20 + $0 }
        names = (0..<nodes).map { "n\($0)" }
        processes = Array(repeating: nil, count: nodes)
        let routes = routePorts.map { "\"nats-route://127.0.0.1:\($0)\"" }.joined(separator: ", ")
        for node in 0..<nodes {
            let config = """
                server_name: \(names[node])
                listen: 127.0.0.1:\(clientPorts[node])
                http: 127.0.0.1:\(monitorPorts[node])
                max_payload: \(Self.maximumPayload)
                jetstream { store_dir: "\(directory.file("store-\(node)"))" }
                """
                + (nodes == 1
                    ? ""
                    : """

                    cluster {
                      name: custody-test
                      listen: 127.0.0.1:\(routePorts[node])
                      routes: [\(routes)]
                    }
                    """)
            try config.write(toFile: directory.file("n\(node).conf"), atomically: true, encoding: .utf8)
        }
        do {
            for node in 0..<nodes { try start(node) }
            for node in 0..<nodes { try await waitUntilAnswering(node) }
        } catch {
            stop()
            throw error
        }
    }

    private static let clustersStarted = Mutex(0)

    /// A range of 30 ports of its own for each cluster: by process (its pid), then by the
    /// clusters it started (four ranges a process, taken in turn), so that suites running at
    /// once, in one process or several, do not collide.
    static func nextBasePort() -> Int {
        let index = clustersStarted.withLock { count in
            count += 1
            return count % 4
        }
        return 20_000 + (Int(getpid() % 250) * 4 + index) * 30
    }

    /// Starts node `node` (again, on its store, after ``kill(_:)``).
    public func start(_ node: Int) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/sbin/nats-server")
        process.arguments = ["--config", directory.file("n\(node).conf")]
        let log = directory.file("n\(node).log")
        if !FileManager.default.fileExists(atPath: log) { _ = FileManager.default.createFile(atPath: log, contents: nil) }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        handle.seekToEndOfFile()
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        try process.run()
        lock.withLock { processes[node] = process }
    }

    /// Kills node `node` with SIGKILL and waits until it has exited.
    public func kill(_ node: Int) async throws {
        guard let process = lock.withLock({ processes[node] }) else { return }
        if process.isRunning { Foundation.kill(process.processIdentifier, SIGKILL) }
        try await ChildProcess.exit(process)
        lock.withLock { processes[node] = nil }
    }

    public func isRunning(_ node: Int) -> Bool {
        lock.withLock { processes[node]?.isRunning ?? false }
    }

    /// Waits (at most 20 s) until node `node` answers `/healthz` on its monitoring port.
    public func waitUntilAnswering(_ node: Int) async throws {
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline {
            if (try? await monitor(node, "/varz")) != nil { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        // What the server said (a port already taken, a store it could not open) says why.
        let log = (try? String(contentsOfFile: directory.file("n\(node).log"), encoding: .utf8)) ?? ""
        throw NATSClusterError(
            "nats-server \(names[node]) did not answer on port \(monitorPorts[node]) (running: \(isRunning(node))); its log ends: \(log.suffix(1500))"
        )
    }

    /// The JSON a node's monitoring endpoint `path` (`/varz`, `/jsz?streams=true`) answers.
    public func monitor(_ node: Int, _ path: String) async throws -> [String: Any] {
        let url = URL(string: "http://127.0.0.1:\(monitorPorts[node])\(path)")!
        let (data, _) = try await URLSession.shared.data(from: url)
        guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw NATSClusterError("\(path) of \(names[node]) is not a JSON object")
        }
        return object
    }

    /// The node that leads stream `stream` now, as the running nodes report it; nil when none
    /// does.
    public func streamLeader(_ stream: String) async -> Int? {
        for node in names.indices where isRunning(node) {
            guard let jsz = try? await monitor(node, "/jsz?streams=true"),
                let accounts = jsz["account_details"] as? [[String: Any]]
            else { continue }
            for account in accounts {
                for detail in account["stream_detail"] as? [[String: Any]] ?? [] where detail["name"] as? String == stream {
                    if let leader = (detail["cluster"] as? [String: Any])?["leader"] as? String, let index = names.firstIndex(of: leader) {
                        return index
                    }
                }
            }
        }
        return nil
    }

    /// Kills every node and removes the directory.
    public func stop() {
        let running = lock.withLock { processes.compactMap { $0 } }
        for process in running where process.isRunning { Foundation.kill(process.processIdentifier, SIGKILL) }
        for process in running { process.waitUntilExit() }
        lock.withLock { processes = processes.map { _ in nil } }
        directory.remove()
    }
}

public struct NATSClusterError: Error, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}
