import ArgumentParser
import CustodyCore
import CustodyLog
import CustodyServer
import Foundation
import Hummingbird
import Logging
import ServiceLifecycle
import UnixSignals

/// `custody serve`: the server (docs/operations.md). Settings come from flags, else the environment
/// (`CUSTODY_*`), else the config file, else the defaults.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the server: API, live stream, projections and dashboard.",
        discussion: """
            Settings: flags override the environment (CUSTODY_DATA_DIR, CUSTODY_HOST, CUSTODY_PORT, CUSTODY_RPC_PORT, \
            CUSTODY_OTLP_GRPC_PORT, CUSTODY_OTLP_HTTP_PORT, CUSTODY_FSYNC, CUSTODY_SEGMENT_BYTES, CUSTODY_SIGNING_KEY, CUSTODY_CHECKPOINT_INTERVAL, CUSTODY_TOKENS, CUSTODY_WORKERS), \
            which overrides the config file (JSON: data_dir, host, port, rpc_port, otlp_grpc_port, otlp_http_port, fsync, \
            segment_bytes, signing_key, checkpoint_interval, tokens, workers). OTLP exporters' defaults work unconfigured: OTLP/gRPC on 4317 and OTLP/HTTP on \
            4318 (0 turns either off); OTLP/HTTP and Zipkin v2 (POST /api/v2/spans) are on the API's port too. Workers — the SimOps endpoints live replay dispatches to, by source \
            name — are --worker NAME=URL (repeatable), CUSTODY_WORKERS="name=url,name=url" or "workers": {"agent-factory": \
            "http://127.0.0.1:9101", …} in the file; live replay waits --worker-timeout-ms (CUSTODY_WORKER_TIMEOUT_MS, \
            "worker_timeout_ms") for each answer, 5000 by default. Bearer tokens — CUSTODY_TOKENS="role:token,role:token" or "tokens": [{"token": …, \
            "role": "ingest|operator|admin"}] in the file — are required for every request but /healthz and /readyz \
            once set, and must be set to listen beyond loopback. Tokens are never printed. \
            GitHub operations run with GITHUB_TOKEN, or the token in --github-token-file (GITHUB_TOKEN_FILE, "github": \
            {"token_file": …} or {"token": …} in the file); without one they answer github_not_configured. The API is \
            --github-api-url (GITHUB_API_URL, default https://api.github.com; a GitHub Enterprise URL ends in /api/v3), the \
            default repository --github-owner/--github-repo (GITHUB_OWNER, GITHUB_REPO); the file's "github" object also takes \
            api_url, owner, repo, timeout_ms, max_attempts, retry_initial_ms and retry_max_ms. \
            SIGINT or SIGTERM shut down gracefully: no new requests, those in flight finish, the log is synchronized \
            and closed, the projections are checkpointed.
            """
    )

    @Option(name: .customLong("data-dir"), help: "The data directory (default ./custody-data, created if missing).")
    var dataDirectory: String?
    @Option(help: "The address to listen on (default 127.0.0.1).") var host: String?
    @Option(help: "The port to listen on (default 8787; 0 picks a free one).") var port: Int?
    @Option(help: "A JSON config file.") var config: String?
    @Option(help: "fsync policy: always, interval=MS or never (default always).") var fsync: String?
    @Option(name: .customLong("rpc-port"), help: "The gRPC port (default 8788; 0 picks a free one).") var rpcPort: Int?
    @Option(name: .customLong("otlp-grpc-port"), help: "The OTLP/gRPC port (default 4317; 0 turns it off).") var otlpGRPCPort: Int?
    @Option(name: .customLong("otlp-http-port"), help: "The OTLP/HTTP port (default 4318; 0 turns it off).") var otlpHTTPPort: Int?
    @Option(name: .customLong("segment-bytes"), help: "Roll segments at this size (default 64 MiB).") var segmentBytes: Int64?
    @Option(
        name: .customLong("signing-key"),
        help:
            "The Ed25519 key file that signs checkpoints (default DATA_DIR.signing-key beside the data directory; created, mode 0600, when missing)."
    )
    var signingKey: String?
    @Option(name: .customLong("checkpoint-interval"), help: "Seconds between signed checkpoints while events come in (default 10).")
    var checkpointInterval: Double?
    @Option(name: .customLong("worker"), help: "A worker for live replay, NAME=URL (repeatable).") var workers: [String] = []
    @Option(name: .customLong("worker-timeout-ms"), help: "How long live replay waits for a worker's answer (default 5000).")
    var workerTimeoutMs: Int?
    @Option(name: .customLong("github-api-url"), help: "GitHub's REST API (default https://api.github.com).") var githubAPIURL: String?
    @Option(name: .customLong("github-owner"), help: "The owner GitHub operations use when a request names none.") var githubOwner: String?
    @Option(name: .customLong("github-repo"), help: "The repository GitHub operations use when a request names none.")
    var githubRepository: String?
    @Option(name: .customLong("github-token-file"), help: "A file holding the GitHub token (else GITHUB_TOKEN).") var githubTokenFile: String?
    @Flag(
        help: """
            Open a damaged log by accepting its loss: damaged ranges move into side files, a cut into \
            acknowledged data is recorded (quarantine.json and a log.loss event), the projections are \
            rebuilt from the log before serving, and new events are numbered after every seq ever \
            acknowledged. Without it, a start on such a log refuses and names what is missing.
            """
    )
    var repair = false
    @Option(
        name: .customLong("log"),
        help:
            "Cluster mode: keep the log in a NATS JetStream stream on these servers (nats://host:port, comma-separated) instead of the data directory."
    )
    var logURLs: String?
    @Option(
        help:
            "Keep the projections in PostgreSQL, shared by every node: postgresql://user[:password]@host:port/database[?schema=NAME] (default: projections.sqlite in the data directory)."
    )
    var projections: String?
    @Option(help: "Cluster mode: the JetStream stream's name (default CUSTODY).") var stream: String?
    @Option(help: "Cluster mode: how many JetStream nodes store each message (default 3).") var replicas: Int?
    @Option(name: .customLong("node-name"), help: "Cluster mode: this node's name (default the host name and the port).")
    var nodeName: String?
    @Option(
        help:
            "Cluster mode: what an acknowledgement waits for: ack (JetStream's majority acknowledgement, default) or fsync (also needs servers reporting sync_always in /varz at --nats-monitor)."
    )
    var durability: String?
    @Option(
        name: .customLong("nats-monitor"),
        help: "Cluster mode: the servers' monitoring URLs (http://host:8222, comma-separated), for --durability fsync."
    )
    var natsMonitor: String?
    @Option(
        name: .customLong("retention-max-age"),
        help: "Retention: delete sealed segments older than this (seconds, or 30m, 12h, 7d, 2w; default off)."
    )
    var retentionMaxAge: String?
    @Option(
        name: .customLong("retention-max-bytes"),
        help:
            "Retention: delete the oldest sealed segments (cluster mode: the stream's oldest messages) while the log is larger (bytes, or 500MB, 50GiB; default off)."
    )
    var retentionMaxBytes: String?
    @Option(name: .customLong("retention-interval"), help: "Retention: seconds between passes (default 60).")
    var retentionInterval: Double?

    /// The settings once flags, environment and file are merged.
    struct Settings {
        var dataDirectory = "./custody-data"
        var host = "127.0.0.1"
        var port = 8787
        /// The gRPC port, on the same host.
        var rpcPort = 8788
        /// OTLP/gRPC's and OTLP/HTTP's own ports, on the same host; 0 is off.
        var otlpGRPCPort = 4317
        var otlpHTTPPort = 4318
        var fsync = FsyncPolicy.always
        var segmentBytes: Int64 = 64 << 20
        var tokens: [String: AccessRole] = [:]
        /// Worker name → SimOps base URL, for live replay.
        var workers: [String: String] = [:]
        var workerTimeoutMs = 5_000
        /// GitHub operations; nil without a token.
        var github: GitHubConfiguration?
        /// Accept a damaged log's loss (`--repair`) instead of refusing to start.
        var repair = false
        /// The checkpoints' key file (nil: beside the data directory).
        var signingKey: String?
        var checkpointInterval = 10.0
        /// Cluster mode (docs/operations.md, "Cluster mode"); nil: the embedded segment log.
        var cluster: ClusterSettings?
        /// Retention (docs/operations.md, "Retention"); off by default.
        var retention = RetentionPolicy()
        /// The projections in PostgreSQL (docs/projections.md); nil: `projections.sqlite`.
        var projections: PostgreSQLLocation?
    }

    /// Where cluster mode's log is and how it is written.
    struct ClusterSettings {
        var urls: String
        var stream = "CUSTODY"
        var replicas = 3
        var nodeName: String?
        var durability = ClusterDurability.acknowledged
        var monitorURLs: [String] = []
    }

    /// The `"github"` object of the config file.
    struct FileGitHub: Decodable {
        var apiUrl: String?
        var owner: String?
        var repo: String?
        var token: String?
        var tokenFile: String?
        var timeoutMs: Int?
        var maxAttempts: Int?
        var retryInitialMs: Int?
        var retryMaxMs: Int?
    }

    struct FileSettings: Decodable {
        var dataDir: String?
        var host: String?
        var port: Int?
        var rpcPort: Int?
        var otlpGrpcPort: Int?
        var otlpHttpPort: Int?
        var fsync: String?
        var segmentBytes: Int64?
        var signingKey: String?
        var checkpointInterval: Double?
        var tokens: [FileToken]?
        var workers: [String: String]?
        var workerTimeoutMs: Int?
        var github: FileGitHub?
        var log: String?
        var stream: String?
        var replicas: Int?
        var nodeName: String?
        var durability: String?
        var natsMonitor: String?
        var retention: FileRetention?
        var projections: String?
    }

    struct FileToken: Decodable {
        var token: String
        var role: String
    }

    func settings() throws -> Settings {
        var settings = Settings()
        var fileGitHub: FileGitHub?
        var fileCluster: FileSettings?
        if let config {
            guard let data = FileManager.default.contents(atPath: config) else { throw ValidationError("cannot read the config file \(config)") }
            let decoder = JSONDecoder()
            decoder.keyDecodingStrategy = .convertFromSnakeCase
            let file: FileSettings
            do {
                file = try decoder.decode(FileSettings.self, from: data)
            } catch {
                throw ValidationError("the config file \(config) is not valid: \(error)")
            }
            if let value = file.dataDir { settings.dataDirectory = value }
            if let value = file.host { settings.host = value }
            if let value = file.port { settings.port = value }
            if let value = file.rpcPort { settings.rpcPort = value }
            if let value = file.otlpGrpcPort { settings.otlpGRPCPort = value }
            if let value = file.otlpHttpPort { settings.otlpHTTPPort = value }
            if let value = file.fsync {
                guard let policy = FsyncPolicy(value) else { throw ValidationError("fsync in \(config) takes always, interval=MS or never") }
                settings.fsync = policy
            }
            if let value = file.segmentBytes { settings.segmentBytes = value }
            if let value = file.signingKey { settings.signingKey = value }
            if let value = file.checkpointInterval { settings.checkpointInterval = value }
            for entry in file.tokens ?? [] {
                guard let role = AccessRole(name: entry.role), !entry.token.isEmpty else {
                    throw ValidationError("a token in \(config) has no value or an unknown role (ingest, operator, admin)")
                }
                settings.tokens[entry.token] = role
            }
            if let value = file.workerTimeoutMs { settings.workerTimeoutMs = value }
            fileGitHub = file.github
            fileCluster = file
            for (name, url) in file.workers ?? [:] { settings.workers[name] = try Self.workerURL(url, name: name, from: config) }
        }
        let environment = ProcessEnvironment.self
        if let value = environment.value("CUSTODY_DATA_DIR") { settings.dataDirectory = value }
        if let value = environment.value("CUSTODY_HOST") { settings.host = value }
        if let value = environment.value("CUSTODY_PORT") {
            guard let port = Int(value) else { throw ValidationError("CUSTODY_PORT must be a port number") }
            settings.port = port
        }
        if let value = environment.value("CUSTODY_RPC_PORT") {
            guard let port = Int(value) else { throw ValidationError("CUSTODY_RPC_PORT must be a port number") }
            settings.rpcPort = port
        }
        if let value = environment.value("CUSTODY_OTLP_GRPC_PORT") {
            guard let port = Int(value) else { throw ValidationError("CUSTODY_OTLP_GRPC_PORT must be a port number") }
            settings.otlpGRPCPort = port
        }
        if let value = environment.value("CUSTODY_OTLP_HTTP_PORT") {
            guard let port = Int(value) else { throw ValidationError("CUSTODY_OTLP_HTTP_PORT must be a port number") }
            settings.otlpHTTPPort = port
        }
        if let value = environment.value("CUSTODY_FSYNC") {
            guard let policy = FsyncPolicy(value) else { throw ValidationError("CUSTODY_FSYNC takes always, interval=MS or never") }
            settings.fsync = policy
        }
        if let value = environment.value("CUSTODY_SIGNING_KEY") { settings.signingKey = value }
        if let value = environment.value("CUSTODY_CHECKPOINT_INTERVAL") {
            guard let seconds = Double(value) else { throw ValidationError("CUSTODY_CHECKPOINT_INTERVAL must be a number of seconds") }
            settings.checkpointInterval = seconds
        }
        if let value = environment.value("CUSTODY_SEGMENT_BYTES") {
            guard let bytes = Int64(value) else { throw ValidationError("CUSTODY_SEGMENT_BYTES must be a number of bytes") }
            settings.segmentBytes = bytes
        }
        if let value = environment.value("CUSTODY_TOKENS") {
            settings.tokens = [:]
            for pair in value.split(separator: ",") {
                let parts = pair.split(separator: ":", maxSplits: 1)
                guard parts.count == 2, let role = AccessRole(name: String(parts[0])), !parts[1].isEmpty else {
                    throw ValidationError("CUSTODY_TOKENS takes role:token pairs separated by commas (roles: ingest, operator, admin)")
                }
                settings.tokens[String(parts[1])] = role
            }
        }
        if let value = environment.value("CUSTODY_WORKERS") {
            settings.workers = try Self.workers(value.split(separator: ",").map(String.init), from: "CUSTODY_WORKERS")
        }
        if !workers.isEmpty { settings.workers = try Self.workers(workers, from: "--worker") }
        if let value = environment.value("CUSTODY_WORKER_TIMEOUT_MS") {
            guard let milliseconds = Int(value) else { throw ValidationError("CUSTODY_WORKER_TIMEOUT_MS must be a number of milliseconds") }
            settings.workerTimeoutMs = milliseconds
        }
        if let workerTimeoutMs { settings.workerTimeoutMs = workerTimeoutMs }
        guard (1...600_000).contains(settings.workerTimeoutMs) else { throw ValidationError("the worker timeout must be 1–600000 ms") }
        settings.github = try github(file: fileGitHub)
        if let dataDirectory { settings.dataDirectory = dataDirectory }
        if let host { settings.host = host }
        if let port { settings.port = port }
        if let rpcPort { settings.rpcPort = rpcPort }
        if let otlpGRPCPort { settings.otlpGRPCPort = otlpGRPCPort }
        if let otlpHTTPPort { settings.otlpHTTPPort = otlpHTTPPort }
        guard (0...65535).contains(settings.rpcPort) else { throw ValidationError("the RPC port must be 0–65535") }
        guard (0...65535).contains(settings.otlpGRPCPort) else { throw ValidationError("the OTLP/gRPC port must be 0–65535 (0: off)") }
        guard (0...65535).contains(settings.otlpHTTPPort) else { throw ValidationError("the OTLP/HTTP port must be 0–65535 (0: off)") }
        if let fsync {
            guard let policy = FsyncPolicy(fsync) else { throw ValidationError("--fsync takes always, interval=MS or never") }
            settings.fsync = policy
        }
        if let segmentBytes { settings.segmentBytes = segmentBytes }
        if let signingKey { settings.signingKey = signingKey }
        if let checkpointInterval { settings.checkpointInterval = checkpointInterval }
        guard settings.checkpointInterval >= 0.05 && settings.checkpointInterval <= 86_400 else {
            throw ValidationError("the checkpoint interval must be 0.05–86400 seconds")
        }
        settings.repair = repair
        settings.cluster = try cluster(file: fileCluster)
        settings.retention = try retention(file: fileCluster?.retention)
        if let url = projections ?? ProcessEnvironment.value("CUSTODY_PROJECTIONS") ?? fileCluster?.projections {
            do {
                settings.projections = try PostgreSQLLocation(url: url)
            } catch {
                throw ValidationError(error.message)
            }
        }
        guard (0...65535).contains(settings.port) else { throw ValidationError("the port must be 0–65535") }
        guard settings.segmentBytes >= 1 << 16 else { throw ValidationError("segment bytes must be at least 65536") }
        do {
            try ListenerExposure.check(host: settings.host, tokens: settings.tokens)
        } catch {
            throw ValidationError(error.description)
        }
        return settings
    }

    /// The GitHub settings from the file, the environment and the flags (in that order of
    /// strength, flags strongest); nil when no token is given anywhere.
    func github(file: FileGitHub?) throws -> GitHubConfiguration? {
        let environment = ProcessEnvironment.self
        var token = try file?.token.map { value in
            guard let token = GitHubToken(value) else { throw ValidationError("github.token in the config file is empty") }
            return token
        }
        var tokenFile = file?.tokenFile
        if let value = environment.value("GITHUB_TOKEN_FILE") { tokenFile = value }
        if let value = environment.value("GITHUB_TOKEN") {
            guard let value = GitHubToken(value) else { throw ValidationError("GITHUB_TOKEN is empty or holds blanks") }
            token = value
            tokenFile = nil
        }
        if let githubTokenFile { tokenFile = githubTokenFile }
        if let tokenFile {
            do {
                token = try GitHubToken(contentsOfFile: tokenFile)
            } catch {
                throw ValidationError("\(error)")
            }
        }
        guard let token else { return nil }
        var github = GitHubConfiguration(token: token)
        if let value = file?.apiUrl { github.apiURL = value }
        if let value = environment.value("GITHUB_API_URL") { github.apiURL = value }
        if let value = githubAPIURL { github.apiURL = value }
        github.owner = githubOwner ?? environment.value("GITHUB_OWNER") ?? file?.owner
        github.repository = githubRepository ?? environment.value("GITHUB_REPO") ?? file?.repo
        if let value = file?.timeoutMs {
            guard (1...600_000).contains(value) else { throw ValidationError("github.timeout_ms must be 1–600000") }
            github.timeout = .milliseconds(value)
        }
        if let value = file?.maxAttempts {
            guard (1...100).contains(value) else { throw ValidationError("github.max_attempts must be 1–100") }
            github.retry.maximumAttempts = UInt32(value)
        }
        if let value = file?.retryInitialMs {
            guard (1...3_600_000).contains(value) else { throw ValidationError("github.retry_initial_ms must be 1–3600000") }
            github.retry.initialDelay = .milliseconds(value)
        }
        if let value = file?.retryMaxMs {
            guard (1...3_600_000).contains(value) else { throw ValidationError("github.retry_max_ms must be 1–3600000") }
            github.retry.maximumDelay = .milliseconds(value)
        }
        do {
            _ = try github.settings()
        } catch {
            throw ValidationError("\(error)")
        }
        return github
    }

    /// Cluster mode's settings from the file, the environment (`CUSTODY_LOG`, `CUSTODY_STREAM`,
    /// `CUSTODY_REPLICAS`, `CUSTODY_NODE_NAME`, `CUSTODY_DURABILITY`, `CUSTODY_NATS_MONITOR`) and
    /// the flags, flags strongest; nil without a log URL (the embedded log).
    func cluster(file: FileSettings?) throws -> ClusterSettings? {
        let environment = ProcessEnvironment.self
        guard let urls = logURLs ?? environment.value("CUSTODY_LOG") ?? file?.log else {
            if stream != nil || replicas != nil || nodeName != nil || durability != nil {
                throw ValidationError("--stream, --replicas, --node-name and --durability are for cluster mode: give --log nats://… too")
            }
            return nil
        }
        let servers = urls.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        guard !servers.isEmpty, servers.allSatisfy({ $0.hasPrefix("nats://") && $0.count > 7 }) else {
            throw ValidationError("--log takes nats://host:port URLs separated by commas")
        }
        var cluster = ClusterSettings(urls: servers.joined(separator: ","))
        if let value = stream ?? environment.value("CUSTODY_STREAM") ?? file?.stream { cluster.stream = value }
        guard !cluster.stream.isEmpty, cluster.stream.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") }) else {
            throw ValidationError("the stream's name takes letters, digits, - and _")
        }
        if let value = replicas ?? environment.value("CUSTODY_REPLICAS").flatMap({ Int($0) }) ?? file?.replicas { cluster.replicas = value }
        guard (1...5).contains(cluster.replicas) else { throw ValidationError("--replicas must be 1–5 (JetStream's limit)") }
        cluster.nodeName = nodeName ?? environment.value("CUSTODY_NODE_NAME") ?? file?.nodeName
        if let name = cluster.nodeName {
            guard !name.isEmpty, name.count <= 64, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }) else {
                throw ValidationError("--node-name takes up to 64 letters, digits, -, _ and .")
            }
        }
        if let value = durability ?? environment.value("CUSTODY_DURABILITY") ?? file?.durability {
            guard let parsed = ClusterDurability(rawValue: value) else { throw ValidationError("--durability takes ack or fsync") }
            cluster.durability = parsed
        }
        if let value = natsMonitor ?? environment.value("CUSTODY_NATS_MONITOR") ?? file?.natsMonitor {
            cluster.monitorURLs = value.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        }
        if cluster.durability == .fsync && cluster.monitorURLs.isEmpty {
            throw ValidationError("--durability fsync checks each server's /varz: give their monitoring URLs with --nats-monitor")
        }
        return cluster
    }

    /// `name=url` pairs.
    static func workers(_ pairs: [String], from origin: String) throws -> [String: String] {
        var workers: [String: String] = [:]
        for pair in pairs {
            let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, !parts[0].isEmpty else {
                throw ValidationError("\(origin) takes NAME=URL (e.g. agent-factory=http://127.0.0.1:9101)")
            }
            workers[parts[0]] = try workerURL(parts[1], name: parts[0], from: origin)
        }
        return workers
    }

    static func workerURL(_ url: String, name: String, from origin: String) throws -> String {
        guard url.hasPrefix("http://") || url.hasPrefix("https://") || url.hasPrefix("grpc://"), url.count > 8 else {
            throw ValidationError("the URL of worker \(name) in \(origin) must start with http://, https:// or grpc:// (SimOps over gRPC)")
        }
        return url
    }

    func run() async throws {
        let settings = try settings()
        let logger = Logger(label: "custody")
        guard let location = settings.projections else {
            try await Self.serve(settings: settings, store: nil, logger: logger)
            return
        }
        try await awaitingCleanErrors {
            try await PostgreSQLProjectionStore.withStore(at: location, logger: logger) { store in
                try await Self.serve(settings: settings, store: store, logger: logger)
            }
        }
    }

    /// Builds the server over `store` (nil: the data directory's SQLite projections) and runs it
    /// until a signal stops it.
    static func serve(settings: Settings, store: (any ProjectionStore)?, logger: Logger) async throws {
        let application = try await Self.application(settings: settings, store: store, logger: logger)
        do {
            try await application.runService(gracefulShutdownSignals: [.sigterm, .sigint])
        } catch {
            printError("custody: the server stopped: \(error)")
            throw ExitCode(1)
        }
    }

    /// Opens the data directory and builds the server (not yet running); prints the URL once it
    /// listens. `custody demo` runs the same.
    static func application(
        settings: Settings,
        store: (any ProjectionStore)? = nil,
        logger: Logger
    ) async throws -> some ApplicationProtocol {
        do {
            try FileManager.default.createDirectory(atPath: settings.dataDirectory, withIntermediateDirectories: true)
        } catch {
            printError("custody: \(error.localizedDescription)")
            throw ExitCode(1)
        }
        let metrics = ServerMetrics()
        var configuration = CoreRuntime.Configuration()
        configuration.log = LogConfiguration(fsync: settings.fsync, segmentBytes: settings.segmentBytes)
        configuration.log.onSynchronization = metrics.recordSynchronization
        configuration.damagePolicy = settings.repair ? .quarantine : .refuse
        if let key = settings.signingKey { configuration.signing = .keyFile(key) }
        configuration.checkpointInterval = .milliseconds(Int64(settings.checkpointInterval * 1000))
        configuration.retention = settings.retention
        if !settings.workers.isEmpty {
            configuration.workers = RemoteReplayWorkers(workers: settings.workers, timeout: .milliseconds(settings.workerTimeoutMs))
        }
        var githubLine = "GitHub operations: off (set GITHUB_TOKEN to enable them)"
        if let github = settings.github {
            configuration.github = try github.settings()
            let repository = github.owner.map { owner in github.repository.map { "\(owner)/\($0)" } ?? "owner \(owner)" }
            githubLine = "GitHub operations: on, \(github.apiURL), default repository \(repository ?? "none")"
        }
        var clusterLine: String?
        var presence: ClusterPresence?
        let runtime = try await awaitingCleanErrors {
            if let cluster = settings.cluster {
                let (runtime, membership, line) = try await clusterRuntime(
                    cluster,
                    settings: settings,
                    store: store,
                    configuration: configuration,
                    logger: logger,
                    liveEncoding: CustodyApplication.liveEncoding
                )
                clusterLine = line
                presence = membership
                return runtime
            }
            return try await CoreRuntime.open(
                directory: settings.dataDirectory,
                store: store,
                configuration: configuration,
                logger: logger,
                liveEncoding: CustodyApplication.liveEncoding
            )
        }
        var checkpointLine = "Signed checkpoints: off"
        if let writer = runtime.proofs.checkpoints {
            let keyPath = settings.signingKey ?? SigningKey.defaultPath(forDataDirectory: settings.dataDirectory)
            checkpointLine =
                "Signed checkpoints: every \(settings.checkpointInterval) s, key \(LogCheckpoint.keyID(of: await writer.publicKey)) (\(keyPath))"
        }
        let projectionsLine =
            settings.projections.map { "Projections: PostgreSQL, \($0), shared by every node using it" }
            ?? "Projections: SQLite, \(ProjectionPaths.database(in: settings.dataDirectory))"
        let githubStatus = githubLine + "\n" + checkpointLine + "\n" + projectionsLine + (clusterLine.map { "\n" + $0 } ?? "")
        var serverConfiguration = ServerConfiguration(host: settings.host, port: settings.port)
        serverConfiguration.tokens = settings.tokens
        serverConfiguration.cluster = presence
        let host = settings.host
        let shownHost = host.contains(":") ? "[\(host)]" : host
        // One bound on ingest in flight, whichever port it arrives on.
        let gate = IngestGate(limit: serverConfiguration.limits.maximumConcurrentIngest)
        let rpc = try RPCServer(
            runtime: runtime,
            configuration: RPCConfiguration(host: settings.host, port: settings.rpcPort),
            tokens: settings.tokens,
            metrics: metrics,
            gate: gate,
            logger: logger
        ) { port in
            writeAll(STDOUT_FILENO, "RPC (gRPC) is listening on \(shownHost):\(port)\n")
        }
        var otlp: [any Service] = presence.map { [$0] } ?? []
        if settings.otlpGRPCPort != 0 {
            otlp.append(
                try OTLPGRPCServer(
                    runtime: runtime,
                    host: host,
                    port: settings.otlpGRPCPort,
                    limits: serverConfiguration.limits,
                    tokens: settings.tokens,
                    metrics: metrics,
                    gate: gate,
                    logger: logger
                ) { port in
                    writeAll(STDOUT_FILENO, "OTLP/gRPC is listening on \(shownHost):\(port)\n")
                }
            )
        }
        if settings.otlpHTTPPort != 0 {
            otlp.append(
                try CustodyApplication.otlpHTTPServer(
                    runtime: runtime,
                    host: host,
                    port: settings.otlpHTTPPort,
                    metrics: metrics,
                    limits: serverConfiguration.limits,
                    tokens: settings.tokens,
                    gate: gate,
                    logger: logger
                ) { port in
                    writeAll(STDOUT_FILENO, "OTLP/HTTP is listening on http://\(shownHost):\(port)/v1/traces\n")
                }
            )
        }
        return try CustodyApplication.application(
            runtime: runtime,
            configuration: serverConfiguration,
            metrics: metrics,
            logger: logger,
            rpc: rpc,
            services: otlp,
            gate: gate
        ) { port in
            let url = "http://\(settings.host.contains(":") ? "[\(settings.host)]" : settings.host):\(port)/"
            writeAll(STDOUT_FILENO, "Custody is listening on \(url)\nDashboard: \(url)\n\(githubStatus)\n")
        }
    }

}
