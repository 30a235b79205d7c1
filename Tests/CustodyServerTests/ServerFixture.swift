import CustodyCore
import CustodyLog
import CustodyServer
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import ServiceLifecycle
import Testing

/// A server over a fresh data directory in a temporary folder, for one test. The application runs
/// its services (the runtime's following of the log), as `custody serve` does.
enum ServerFixture {
    static func directory() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("custody-server-\(UUID().uuidString)").path
    }

    static func run<Value: Sendable>(
        _ setup: TestingSetup = .router,
        limits: ServerLimits = ServerLimits(),
        tokens: [String: AccessRole] = [:],
        directory: String = directory(),
        workers: [String: String] = [:],
        // Long by default: under the whole suite's load a real worker can take seconds to answer.
        workerTimeout: Duration = .seconds(15),
        fileSystem: (any LogFileSystem)? = nil,
        github: GitHubSettings? = nil,
        rpcPort: Shared<Int>? = nil,
        otlpGRPCPort: Shared<Int>? = nil,
        otlpHTTPPort: Shared<Int>? = nil,
        _ test: @escaping @Sendable (CoreRuntime, any TestClientProtocol) async throws -> Value
    ) async throws -> Value {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let metrics = ServerMetrics()
        var runtimeConfiguration = CoreRuntime.Configuration()
        runtimeConfiguration.log.onSynchronization = metrics.recordSynchronization
        if let fileSystem { runtimeConfiguration.fileSystem = fileSystem }
        runtimeConfiguration.github = github
        if !workers.isEmpty { runtimeConfiguration.workers = RemoteReplayWorkers(workers: workers, timeout: workerTimeout) }
        let runtime = try await CoreRuntime.open(directory: directory, configuration: runtimeConfiguration, encodeLive: CustodyApplication.encodeLive)
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
struct Envelope {
    let status: HTTPResponse.Status
    let headers: HTTPFields
    let json: [String: Any]

    var ok: Bool { json["ok"] as? Bool ?? false }
    var data: [String: Any] { json["data"] as? [String: Any] ?? [:] }
    var errorCode: String? { (json["error"] as? [String: Any])?["code"] as? String }
    var errorMessage: String? { (json["error"] as? [String: Any])?["message"] as? String }
    var errorField: String? { ((json["error"] as? [String: Any])?["details"] as? [String: Any])?["field"] as? String }

    init(_ response: TestResponse) {
        status = response.status
        headers = response.headers
        json = (try? JSONSerialization.jsonObject(with: Data(response.body.readableBytesView))) as? [String: Any] ?? [:]
    }
}

extension TestClientProtocol {
    func call(_ method: HTTPRequest.Method, _ uri: String, json: String? = nil, headers: HTTPFields = [:]) async throws -> Envelope {
        var fields = headers
        if json != nil, fields[.contentType] == nil { fields[.contentType] = "application/json" }
        return try await execute(uri: uri, method: method, headers: fields, body: json.map { ByteBuffer(string: $0) }) { Envelope($0) }
    }
}

/// The spans of a trace, read from the log (what the request recorded).
func spans(of traceId: String, in runtime: CoreRuntime) async throws -> [Span] {
    try await spansMatching(runtime) { $0.traceId == traceId }
}

/// The spans in the log that `match`, in seq order.
func spansMatching(_ runtime: CoreRuntime, _ match: (Span) -> Bool) async throws -> [Span] {
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

/// Child processes without blocking a thread of Swift's cooperative pool (two threads on this
/// machine: a test blocked in `waitUntilExit` or a pipe read starves the servers of other tests
/// running in parallel).
enum ChildProcess {
    /// Waits, polling, until `process` has exited.
    static func exit(_ process: Process) async throws {
        while process.isRunning { try await Task.sleep(for: .milliseconds(20)) }
    }

    /// The text of `file` once it holds `needle` (at most `seconds`), as it is then.
    static func text(of file: String, containing needle: String, seconds: Int = 10) async throws -> String {
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
    static func outputFile(_ path: String) throws -> FileHandle {
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        return try FileHandle(forWritingTo: URL(fileURLWithPath: path))
    }
}

extension CoreRuntime {
    /// The SQLite store behind a data directory's runtime, for tests that look at its rows.
    var sqliteStore: SQLiteProjectionStore { projector.store as! SQLiteProjectionStore }
}
