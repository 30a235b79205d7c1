import AsyncHTTPClient
import CustodyLogTesting
import CustodyServerTesting
import Foundation
import NIOCore
import NIOHTTP1
import Testing

/// `custody serve` as a real child process with a GitHub token: killed with SIGKILL while GitHub
/// is carrying out an operation, it resumes the operation on restart, checks GitHub, and does
/// not make the change twice. And the token is nowhere but the Authorization header: not in the
/// log's events, the data directory's files, the answers, or the server's output.
@Suite(.timeLimit(.minutes(2))) struct GitHubCrashTests {
    static let token = "ghp_crashTestSecret9876543210qwertyZ"

    /// Starts the server with GitHub pointed at `fake`; its output goes to `output` (appended).
    /// With `tokenFile`, the token comes from that file (`--github-token-file`), else from
    /// `GITHUB_TOKEN`.
    /// `arguments` are added to `serve`'s (cluster mode's `--log`, for one).
    static func startServer(
        directory: String,
        fake: FakeGitHub,
        output: String,
        tokenFile: String? = nil,
        arguments: [String] = []
    ) async throws -> (Process, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CustodyExecutable.path)
        process.arguments =
            ["serve", "--data-dir", directory, "--port", "0", "--rpc-port", "0", "--otlp-grpc-port", "0", "--otlp-http-port", "0"]
            + (tokenFile.map { ["--github-token-file", $0] } ?? []) + arguments
        var environment = ProcessInfo.processInfo.environment
        environment["GITHUB_TOKEN"] = tokenFile == nil ? token : nil
        environment["GITHUB_API_URL"] = fake.baseURL
        environment["GITHUB_OWNER"] = "acme"
        environment["GITHUB_REPO"] = "widgets"
        process.environment = environment
        if !FileManager.default.fileExists(atPath: output) { _ = FileManager.default.createFile(atPath: output, contents: nil) }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: output))
        try handle.seekToEnd()
        process.standardOutput = handle
        process.standardError = handle
        let before = (try? String(contentsOfFile: output, encoding: .utf8))?.components(separatedBy: "Custody is listening on ").count ?? 1
        try process.run()
        for _ in 0..<400 {
            let text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
            let parts = text.components(separatedBy: "Custody is listening on ")
            if parts.count > before, let line = parts.last?.split(separator: "\n").first {
                var url = String(line)
                while url.hasSuffix("/") { url.removeLast() }
                return (process, url)
            }
            try await Task.sleep(for: .milliseconds(25))
        }
        process.terminate()
        throw CocoaError(.fileReadUnknown)
    }

    struct Answer {
        var status: Int
        var text: String
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:] }
        var operation: [String: Any] { (json["data"] as? [String: Any])?["operation"] as? [String: Any] ?? [:] }
    }

    static func call(
        _ client: HTTPClient,
        _ method: HTTPMethod,
        _ url: String,
        json: String? = nil,
        traceId: String? = nil,
        idempotencyKey: String? = nil
    ) async throws -> Answer {
        var request = HTTPClientRequest(url: url)
        if let idempotencyKey { request.headers.add(name: "idempotency-key", value: idempotencyKey) }
        request.method = method
        if let json {
            request.headers.add(name: "content-type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: json))
        }
        if let traceId { request.headers.add(name: "x-trace-id", value: traceId) }
        let response = try await client.execute(request, timeout: .seconds(40))
        let body = try await response.body.collect(upTo: 16 << 20)
        return Answer(status: Int(response.status.code), text: String(buffer: body))
    }

    @Test func anOperationInFlightAtSIGKILLResumesWithoutDuplicatesAndTheTokenStaysSecret() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: CustodyExecutable.path), "build the custody executable first")
        let directory = ServerFixture.directory()
        let output = directory + "-output.txt"
        let tokenFile = directory + "-token"
        try "\(Self.token)\n".write(toFile: tokenFile, atomically: true, encoding: .utf8)
        defer {
            removeDataDirectory(directory)
            try? FileManager.default.removeItem(atPath: output)
            try? FileManager.default.removeItem(atPath: tokenFile)
        }
        let fake = try await FakeGitHub.start(token: Self.token)
        // A server that quotes the credentials back in an error; and one that makes the issue and
        // then never answers.
        fake.script("PUT", "/contents/secret.md", .echoAuthorization(422))
        fake.script("POST", "/issues", .applyThenHang)
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        var answers: [String] = []

        var (server, base) = try await Self.startServer(directory: directory, fake: fake, output: output)
        let echoed = try await Self.call(
            client,
            .POST,
            base + "/api/github/files?wait=true",
            json: #"{"path":"secret.md","content":"x","message":"m"}"#
        )
        answers.append(echoed.text)
        #expect(echoed.operation["status"] as? String == "failed")
        #expect("\(echoed.operation["error"] ?? "")".contains("Authorization: Bearer [REDACTED]"))

        let requested = try await Self.call(
            client,
            .POST,
            base + "/api/github/issues",
            json: #"{"title":"Crash","body":"mid-flight"}"#,
            traceId: "gh-crash"
        )
        answers.append(requested.text)
        #expect(requested.status == 202)
        let id = try #require(requested.operation["id"] as? String)
        // GitHub has made the issue; Custody has not heard back.
        for _ in 0..<400 where fake.issueCount == 0 { try await Task.sleep(for: .milliseconds(25)) }
        try #require(fake.issueCount == 1)
        kill(server.processIdentifier, SIGKILL)
        try await ChildProcess.exit(server)

        // The restart reads the token from a file.
        (server, base) = try await Self.startServer(directory: directory, fake: fake, output: output, tokenFile: tokenFile)
        var operation: [String: Any] = [:]
        for _ in 0..<400 {
            let answer = try await Self.call(client, .GET, base + "/api/github/operations/\(id)")
            answers.append(answer.text)
            operation = answer.operation
            if operation["status"] as? String != "pending" { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(operation["status"] as? String == "succeeded")
        #expect((operation["result"] as? [String: Any])?["found_existing"] as? Bool == true)
        #expect(fake.issueCount == 1)
        #expect(fake.received.filter { $0.method == "POST" && $0.path.hasSuffix("/issues") }.count == 1)
        let trace = try await Self.call(client, .GET, base + "/api/traces/gh-crash")
        answers.append(trace.text)
        #expect(trace.text.contains("github GET /repos/{owner}/{repo}/issues"))
        let listed = try await Self.call(client, .GET, base + "/api/github/operations")
        answers.append(listed.text)
        answers.append(try await Self.call(client, .GET, base + "/api/admin/stats").text)
        answers.append(try await Self.call(client, .GET, base + "/metrics").text)

        kill(server.processIdentifier, SIGTERM)
        try await ChildProcess.exit(server)
        try await client.shutdown()
        let fakeURL = fake.baseURL
        await fake.stop()

        // The token: in every request's Authorization header, and nowhere else.
        #expect(fake.received.allSatisfy { $0.authorization == "Bearer \(Self.token)" })
        #expect(fake.received.allSatisfy { !$0.body.contains(Self.token) && !$0.path.contains(Self.token) })
        for answer in answers { #expect(!answer.contains(Self.token)) }
        let printed = try String(contentsOfFile: output, encoding: .utf8)
        #expect(printed.contains("GitHub operations: on, \(fakeURL), default repository acme/widgets"))
        #expect(!printed.contains(Self.token))
        let dump = Process()
        dump.executableURL = URL(fileURLWithPath: CustodyExecutable.path)
        dump.arguments = ["log", "dump", "--data-dir", directory]
        let dumped = directory + "-dump.jsonl"
        defer { try? FileManager.default.removeItem(atPath: dumped) }
        dump.standardOutput = try ChildProcess.outputFile(dumped)
        try dump.run()
        try await ChildProcess.exit(dump)
        let events = try String(contentsOfFile: dumped, encoding: .utf8)
        #expect(events.contains("github.requested") && events.contains("github.succeeded") && events.contains("[REDACTED]"))
        #expect(!events.contains(Self.token))
        let files = FileManager.default.enumerator(atPath: directory)?.compactMap { $0 as? String } ?? []
        #expect(!files.isEmpty)
        for file in files {
            let bytes = FileManager.default.contents(atPath: directory + "/" + file) ?? Data()
            #expect(bytes.range(of: Data(Self.token.utf8)) == nil, "\(file) holds the token")
        }
    }
}
