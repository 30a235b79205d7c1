import CustodyCore
import CustodyLog
import CustodyLogTesting
import CustodyServer
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import ServiceLifecycle
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A server over a fresh data directory in a temporary folder, for one test. The application runs
/// its services (the runtime's following of the log), as `custody serve` does.
public enum ServerFixture {
    public static func directory() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("custody-server-\(UUID().uuidString)").path
    }

    /// A new folder for the signing key file that a test's cluster nodes share (one key for the
    /// log, docs/operations.md): the folder (remove it after) and the key file's path in it.
    public static func sharedSigningKey() throws -> (folder: String, key: String) {
        let folder = directory()
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        return (folder, folder + "/cluster.signing-key")
    }

    public static func run<Value: Sendable>(
        _ setup: TestingSetup = .router,
        limits: ServerLimits = ServerLimits(),
        tokens: [String: AccessRole] = [:],
        directory: String = directory(),
        workers: [String: String] = [:],
        // Long by default: under the whole suite's load a real worker can take seconds to answer.
        workerTimeout: Duration = .seconds(15),
        // Workers known only once they listen (their ports handed over after the server starts).
        replayWorkers: (any ReplayWorkers)? = nil,
        fileSystem: (any LogFileSystem)? = nil,
        github: GitHubSettings? = nil,
        rpcPort: Shared<Int>? = nil,
        otlpGRPCPort: Shared<Int>? = nil,
        otlpHTTPPort: Shared<Int>? = nil,
        // The projections, when not the data directory's SQLite file (PostgreSQL).
        projections: (any ProjectionStore)? = nil,
        _ test: @escaping @Sendable (CoreRuntime, any TestClientProtocol) async throws -> Value
    ) async throws -> Value {
        defer { removeDataDirectory(directory) }
        let metrics = ServerMetrics()
        var runtimeConfiguration = CoreRuntime.Configuration()
        runtimeConfiguration.log.onSynchronization = metrics.recordSynchronization
        if let fileSystem { runtimeConfiguration.fileSystem = fileSystem }
        runtimeConfiguration.github = github
        if !workers.isEmpty { runtimeConfiguration.workers = RemoteReplayWorkers(workers: workers, timeout: workerTimeout) }
        if let replayWorkers { runtimeConfiguration.workers = replayWorkers }
        let runtime = try await CoreRuntime.open(
            directory: directory,
            store: projections,
            configuration: runtimeConfiguration,
            liveEncoding: CustodyApplication.liveEncoding
        )
        var configuration = ServerConfiguration(host: "127.0.0.1", port: 0)
        configuration.limits = limits
        configuration.tokens = tokens
        // With `rpcPort`, the gRPC server too, on a free port written there once it listens.
        let rpc = try rpcPort.map { shared in
            try RPCServer(runtime: runtime, configuration: RPCConfiguration(port: 0), limits: limits, tokens: tokens, metrics: metrics) { port in
                shared.withLock { $0 = port }
            }
        }
        // The OTLP listeners likewise, sharing the API's ingest gate as `custody serve`'s do.
        let gate = IngestGate(limit: limits.maximumConcurrentIngest)
        var services: [any Service] = []
        if let otlpGRPCPort {
            services.append(
                try OTLPGRPCServer(runtime: runtime, port: 0, limits: limits, tokens: tokens, metrics: metrics, gate: gate) { port in
                    otlpGRPCPort.withLock { $0 = port }
                }
            )
        }
        if let otlpHTTPPort {
            services.append(
                try CustodyApplication.otlpHTTPServer(
                    runtime: runtime,
                    host: "127.0.0.1",
                    port: 0,
                    metrics: metrics,
                    limits: limits,
                    tokens: tokens,
                    gate: gate
                ) { port in otlpHTTPPort.withLock { $0 = port } }
            )
        }
        let app = try CustodyApplication.application(
            runtime: runtime,
            configuration: configuration,
            metrics: metrics,
            rpc: rpc,
            services: services,
            gate: gate
        )
        return try await app.test(setup) { client in try await test(runtime, client) }
    }
}

/// A decoded envelope.
public struct Envelope {
    public let status: HTTPResponse.Status
    public let headers: HTTPFields
    public let json: [String: Any]

    public var ok: Bool { json["ok"] as? Bool ?? false }
    public var data: [String: Any] { json["data"] as? [String: Any] ?? [:] }
    public var errorCode: String? { (json["error"] as? [String: Any])?["code"] as? String }
    public var errorMessage: String? { (json["error"] as? [String: Any])?["message"] as? String }
    public var errorField: String? { ((json["error"] as? [String: Any])?["details"] as? [String: Any])?["field"] as? String }

    public init(_ response: TestResponse) {
        status = response.status
        headers = response.headers
        json = (try? JSONSerialization.jsonObject(with: Data(response.body.readableBytesView))) as? [String: Any] ?? [:]
    }
}

extension TestClientProtocol {
    public func call(_ method: HTTPRequest.Method, _ uri: String, json: String? = nil, headers: HTTPFields = [:]) async throws -> Envelope {
        var fields = headers
        if json != nil, fields[.contentType] == nil { fields[.contentType] = "application/json" }
        return try await execute(uri: uri, method: method, headers: fields, body: json.map { ByteBuffer(string: $0) }) { Envelope($0) }
    }
}

/// The spans of a trace, read from the log (what the request recorded).
public func spans(of traceId: String, in runtime: CoreRuntime) async throws -> [Span] {
    try await spansMatching(runtime) { $0.traceId == traceId }
}

/// The spans in the log that `match`, in seq order.
public func spansMatching(_ runtime: CoreRuntime, _ match: (Span) -> Bool) async throws -> [Span] {
    var spans: [Span] = []
    var next: UInt64 = 1
    while true {
        let records = try await runtime.log.read(from: next, maxRecords: 10_000)
        guard let last = records.last else { return spans }
        for record in records {
            if case .span(let span) = try EventCodec.decode(record).body, match(span) { spans.append(span) }
        }
        next = last.seq + 1
    }
}

extension CoreRuntime {
    /// The SQLite store behind a data directory's runtime, for tests that look at its rows.
    public var sqliteStore: SQLiteProjectionStore { projector.store as! SQLiteProjectionStore }
}

/// Real workers (``RemoteReplayWorkers``) whose addresses are learnt after the server starts:
/// a worker binds port 0 and says which port it got, and then it is added here. Until then, and
/// for a source never added, nothing is served.
public final class HandedOverWorkers: ReplayWorkers {
    private let workers = Mutex<[String: String]>([:])
    public let timeout: Duration

    public init(timeout: Duration = .seconds(15)) { self.timeout = timeout }

    public func add(_ source: String, _ url: String) { workers.withLock { $0[source] = url } }

    public func serves(_ source: String) -> Bool { workers.withLock { $0[source] != nil } }

    public func simulate(_ call: SimulationCall, on worker: String) async throws -> Double? {
        try await RemoteReplayWorkers(workers: workers.withLock { $0 }, timeout: timeout).simulate(call, on: worker)
    }
}

/// A loopback port that is bound and never listened on, held until ``close()``: connecting to it
/// is refused (a worker that is down), and no other process can take it meanwhile.
public final class RefusingPort: Sendable {
    public let port: Int
    private let descriptor: Int32

    public init() throws {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.descriptor = descriptor
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { throw POSIXError(.EADDRINUSE) }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    public func close() { _ = Glibc.close(descriptor) }
}

/// A value shared by concurrent tasks.
public final class Shared<Value: Sendable>: Sendable {
    private let value: Mutex<Value>
    public init(_ value: Value) { self.value = Mutex(value) }
    public func withLock<T: Sendable>(_ body: (inout Value) -> T) -> T { value.withLock { body(&$0) } }
}
