import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// A stand-in for GitHub's REST API over a real socket: the parts GitHubOps uses (contents,
/// pulls, issues), with the status codes, headers and bodies GitHub's published REST API
/// description documents, under a GitHub Enterprise-style prefix (`/api/v3`). Tests script
/// failures — a status (with rate-limit headers), a change made and then a 502, a change made and
/// then the connection dropped or left hanging — and inspect every request it received.
///
/// A fake of an external service (the guide allows it); nothing of Custody is faked.
public final class FakeGitHub: Sendable {
    public static let prefix = "/api/v3"

    /// What a scripted request gets instead of the normal answer.
    public enum Fault: Sendable {
        /// This answer, without doing anything.
        case respond(Int, headers: [String: String] = [:], body: String)
        /// Do the change, then answer with this status (a 502 from a proxy after the write).
        case applyThenRespond(Int)
        /// Do the change, then close the connection without answering.
        case applyThenDrop
        /// Do the change, then never answer.
        case applyThenHang
        /// An error answer that quotes the request's Authorization header back.
        case echoAuthorization(Int)
    }

    public struct Received: Sendable {
        public var method: String
        public var path: String
        public var query: [String: String]
        public var authorization: String?
        public var body: String
    }

    struct File {
        var content: Data
        var sha: String
    }

    struct State {
        var files: [String: File] = [:]
        var pulls: [[String: Any]] = []
        var issues: [[String: Any]] = []
        var received: [Received] = []
        var faults: [(method: String, pathSuffix: String, fault: Fault)] = []
        var nextNumber = 1
        var nextSha = 1
    }

    /// `State` holds `[String: Any]` (JSON objects as JSONSerialization gives them); it is only
    /// touched inside `lock`, never across an await or I/O.
    private let state = Mutex<SendableBox<State>>(SendableBox(State()))
    public let token: String
    let channel: any Channel
    public var port: Int { channel.localAddress?.port ?? 0 }
    public var baseURL: String { "http://127.0.0.1:\(port)\(Self.prefix)" }

    private init(token: String, channel: any Channel) {
        self.token = token
        self.channel = channel
    }

    public static func start(token: String) async throws -> FakeGitHub {
        let box = Mutex<FakeGitHub?>(nil)
        let ready = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let server = box.withLock { $0 }!
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(FakeGitHubHandler(server: server))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let server = FakeGitHub(token: token, channel: ready)
        box.withLock { $0 = server }
        return server
    }

    public func stop() async {
        try? await channel.close()
    }

    /// The next request of `method` whose path ends with `pathSuffix` gets `fault`.
    public func script(_ method: String, _ pathSuffix: String, _ fault: Fault) {
        state.withLock { $0.value.faults.append((method, pathSuffix, fault)) }
    }

    public var received: [Received] { state.withLock { $0.value.received } }
    public var issueCount: Int { state.withLock { $0.value.issues.count } }
    public var pullCount: Int { state.withLock { $0.value.pulls.count } }
    public func file(_ owner: String, _ repo: String, _ path: String, branch: String = "main") -> String? {
        state.withLock { $0.value.files["\(owner)/\(repo)/\(branch)/\(path)"].map { String(decoding: $0.content, as: UTF8.self) } }
    }
    public func putFile(_ owner: String, _ repo: String, _ path: String, _ content: String, branch: String = "main") {
        state.withLock { box in
            box.value.nextSha += 1
            box.value.files["\(owner)/\(repo)/\(branch)/\(path)"] = File(content: Data(content.utf8), sha: String(format: "%040x", box.value.nextSha))
        }
    }
    public var issueTitles: [String] { state.withLock { $0.value.issues.compactMap { $0["title"] as? String } } }
    public var issueBodies: [String] { state.withLock { $0.value.issues.compactMap { $0["body"] as? String } } }

    // MARK: Answering

    enum Action {
        case respond(Int, [String: String], String)
        case drop
        case hang
    }

    func handle(method: String, uri: String, authorization: String?, body: Data) -> Action {
        let parts = uri.split(separator: "?", maxSplits: 1)
        let rawPath = String(parts.first ?? "")
        var query: [String: String] = [:]
        for pair in (parts.count > 1 ? parts[1] : "").split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1).map { String($0).removingPercentEncoding ?? String($0) }
            query[kv[0]] = kv.count > 1 ? kv[1] : ""
        }
        return state.withLock { box -> Action in
            box.value.received.append(
                Received(method: method, path: rawPath, query: query, authorization: authorization, body: String(decoding: body, as: UTF8.self))
            )
            guard authorization == "Bearer \(token)" else {
                return .respond(401, [:], #"{"message":"Bad credentials","documentation_url":"https://docs.github.com/rest","status":"401"}"#)
            }
            guard rawPath.hasPrefix(Self.prefix) else { return Self.notFound }
            let path = String(rawPath.dropFirst(Self.prefix.count))
            var fault: Fault?
            if let index = box.value.faults.firstIndex(where: { $0.method == method && path.hasSuffix($0.pathSuffix) }) {
                fault = box.value.faults.remove(at: index).fault
            }
            switch fault {
            case .respond(let status, let headers, let body)?:
                return .respond(status, headers, body)
            case .echoAuthorization(let status)?:
                let message = "refused the request with Authorization: \(authorization ?? "")"
                let json = try! JSONSerialization.data(withJSONObject: ["message": message, "status": String(status)])
                return .respond(status, [:], String(decoding: json, as: UTF8.self))
            default:
                break
            }
            let answer = Self.route(&box.value, method: method, path: path, query: query, body: body)
            switch fault {
            case .applyThenRespond(let status)?:
                return .respond(status, [:], "<html><body><h1>\(status) Bad Gateway</h1></body></html>")
            case .applyThenDrop?: return .drop
            case .applyThenHang?: return .hang
            default: return answer
            }
        }
    }

    static let notFound = Action.respond(
        404,
        [:],
        #"{"message":"Not Found","documentation_url":"https://docs.github.com/rest","status":"404"}"#
    )

    static func json(_ status: Int, _ object: Any) -> Action {
        .respond(status, [:], String(decoding: try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self))
    }

    /// The REST routes: /repos/{owner}/{repo}/contents/{path}, /pulls, /issues.
    static func route(_ state: inout State, method: String, path: String, query: [String: String], body: Data) -> Action {
        let segments = path.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard segments.count >= 5, segments[1] == "repos" else { return notFound }
        let owner = segments[2]
        let repo = segments[3]
        let input = (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] ?? [:]
        let web = "https://github.example.com/\(owner)/\(repo)"
        switch (method, segments[4]) {
        case (_, "contents"):
            let filePath = segments[5...].joined(separator: "/").removingPercentEncoding ?? ""
            let branch = (method == "GET" ? query["ref"] : input["branch"] as? String) ?? "main"
            let key = "\(owner)/\(repo)/\(branch)/\(filePath)"
            if method == "GET" {
                guard let file = state.files[key] else { return notFound }
                let encoded = file.content.base64EncodedString(options: [.lineLength64Characters, .endLineWithLineFeed]) + "\n"
                return json(
                    200,
                    [
                        "type": "file", "encoding": "base64", "size": file.content.count,
                        "name": filePath.split(separator: "/").last.map(String.init) ?? "",
                        "path": filePath, "content": encoded, "sha": file.sha, "html_url": "\(web)/blob/\(branch)/\(filePath)",
                    ]
                )
            }
            guard method == "PUT", let content = (input["content"] as? String).flatMap({ Data(base64Encoded: $0) }), input["message"] is String else {
                return json(422, ["message": "Invalid request.", "status": "422"])
            }
            let existing = state.files[key]
            if let existing {
                guard let sha = input["sha"] as? String else {
                    return json(422, ["message": "Invalid request.\n\n\"sha\" wasn't supplied.", "status": "422"])
                }
                guard sha == existing.sha else { return json(409, ["message": "\(filePath) does not match \(sha)", "status": "409"]) }
            }
            state.nextSha += 1
            let sha = String(format: "%040x", state.nextSha)
            state.files[key] = File(content: content, sha: sha)
            return json(
                existing == nil ? 201 : 200,
                [
                    "content": ["path": filePath, "sha": sha, "html_url": "\(web)/blob/\(branch)/\(filePath)", "type": "file"],
                    "commit": ["sha": String(format: "%040x", state.nextSha + 1_000_000), "html_url": "\(web)/commit/\(state.nextSha)"],
                ]
            )
        case ("GET", "pulls"):
            let matches = state.pulls.filter { pull in
                let head = pull["head"] as! [String: Any]
                let base = pull["base"] as! [String: Any]
                return (query["head"].map { $0 == head["label"] as? String } ?? true) && (query["base"].map { $0 == base["ref"] as? String } ?? true)
                    && (query["state"] == "all" || pull["state"] as? String == (query["state"] ?? "open"))
            }
            return json(200, matches)
        case ("POST", "pulls"):
            guard let title = input["title"] as? String, let head = input["head"] as? String, let base = input["base"] as? String else {
                return json(422, ["message": "Validation Failed", "status": "422"])
            }
            let label = head.contains(":") ? head : "\(owner):\(head)"
            if state.pulls.contains(where: { ($0["head"] as! [String: Any])["label"] as? String == label && $0["state"] as? String == "open" }) {
                return json(
                    422,
                    [
                        "message": "Validation Failed", "status": "422",
                        "errors": [["resource": "PullRequest", "code": "custom", "message": "A pull request already exists for \(label)."]],
                    ]
                )
            }
            let number = state.nextNumber
            state.nextNumber += 1
            let pull: [String: Any] = [
                "id": 1000 + number, "number": number, "state": "open", "title": title, "body": input["body"] ?? NSNull(),
                "html_url": "\(web)/pull/\(number)", "url": "https://api.github.example.com/repos/\(owner)/\(repo)/pulls/\(number)",
                "head": ["label": label, "ref": String(label.split(separator: ":").last!), "sha": "abc"],
                "base": ["label": "\(owner):\(base)", "ref": base],
            ]
            state.pulls.append(pull)
            return json(201, pull)
        case ("GET", "issues"):
            // Newest first; pull requests are issues too (with a `pull_request` member).
            let all =
                (state.issues
                + state.pulls.map { pull -> [String: Any] in
                    var issue = pull
                    issue["pull_request"] = ["url": pull["url"]!]
                    return issue
                }).sorted { ($0["number"] as! Int) > ($1["number"] as! Int) }
            let perPage = Int(query["per_page"] ?? "30") ?? 30
            let page = Int(query["page"] ?? "1") ?? 1
            return json(200, Array(all.dropFirst((page - 1) * perPage).prefix(perPage)))
        case ("POST", "issues"):
            guard let title = input["title"] as? String else { return json(422, ["message": "Validation Failed", "status": "422"]) }
            let number = state.nextNumber
            state.nextNumber += 1
            let issue: [String: Any] = [
                "id": 2000 + number, "number": number, "state": "open", "title": title, "body": input["body"] ?? NSNull(),
                "labels": ((input["labels"] as? [String]) ?? []).map { ["name": $0] }, "html_url": "\(web)/issues/\(number)",
            ]
            state.issues.append(issue)
            return json(201, issue)
        default:
            return notFound
        }
    }
}

/// Holds a non-Sendable value inside a `Mutex`: safe because the value is only reached through
/// the mutex's `withLock`, one thread at a time.
struct SendableBox<Value>: @unchecked Sendable {
    var value: Value
    init(_ value: Value) { self.value = value }
}

/// One connection of ``FakeGitHub``: collects a request, asks the server, answers (or not).
final class FakeGitHubHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let server: FakeGitHub
    private var head: HTTPRequestHead?
    private var body = Data()

    init(server: FakeGitHub) { self.server = server }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body = Data()
        case .body(let bytes):
            body.append(contentsOf: bytes.readableBytesView)
        case .end:
            guard let head else { return }
            let action = server.handle(
                method: head.method.rawValue,
                uri: head.uri,
                authorization: head.headers.first(name: "authorization"),
                body: body
            )
            switch action {
            case .respond(let status, let headers, let text):
                var fields = HTTPHeaders([("content-type", "application/json; charset=utf-8"), ("content-length", String(text.utf8.count))])
                for (name, value) in headers { fields.add(name: name, value: value) }
                context.write(
                    wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .init(statusCode: status), headers: fields))),
                    promise: nil
                )
                context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: text)))), promise: nil)
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            case .drop:
                context.close(promise: nil)
            case .hang:
                break
            }
        }
    }
}
