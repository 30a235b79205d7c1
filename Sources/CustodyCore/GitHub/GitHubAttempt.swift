import CustodyLog
import NIOCore

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A GitHub operation waiting in the outbox.
public struct GitHubPendingOperation: Sendable {
    public var id: String
    public var kind: GitHubOperationKind
    public var params: [String: JSONValue]
    public var traceId: String
    public var requestedSeq: UInt64
    public var requestedAt: Int64
    /// Attempts made (and recorded) so far.
    public var attempts: UInt32
    /// When the next attempt may start (nanoseconds since the Unix epoch).
    public var notBefore: Int64
    /// Whether an earlier attempt may have reached GitHub without its outcome being recorded (no
    /// answer, a 5xx, a restart in the middle): the next attempt first checks GitHub's state.
    public var uncertain: Bool
}

/// How one attempt ended.
enum GitHubAttemptOutcome: Sendable {
    /// Done: GitHub's result (a compact summary of what it returned).
    case succeeded(JSONValue)
    /// Done, and trying again cannot help (401, 404, 422, …).
    case failed(JSONValue)
    /// Worth another attempt. `rateLimitedUntil` is GitHub's own instruction (nil: back off);
    /// `uncertain` says the request may have been carried out.
    case retry(JSONValue, rateLimitedUntil: Int64?, uncertain: Bool)
}

/// One attempt at a GitHub operation: the REST calls it takes (the contents API with the current
/// `sha` fetched first, pulls, issues), each recorded as an `outbound_call` span in the
/// operation's trace, and the outcome.
///
/// Idempotency: an attempt that follows one whose outcome is unknown checks GitHub first — an
/// upsert compares the file's content (it always fetches the file, and a file that already holds
/// the content is not written again), a pull request looks for an open one from the same head
/// into the same base, an issue looks for the marker `<!-- custody-operation: ID -->` that every
/// issue created here carries at the end of its body (an HTML comment: not shown by GitHub).
struct GitHubAttempt {
    let operation: GitHubPendingOperation
    let transport: any GitHubTransport
    let retry: GitHubRetryPolicy
    let now: @Sendable () -> Int64
    /// The `outbound_call` spans of the calls made, in order.
    private(set) var spans: [Span] = []

    init(operation: GitHubPendingOperation, transport: any GitHubTransport, retry: GitHubRetryPolicy, now: @escaping @Sendable () -> Int64) {
        self.operation = operation
        self.transport = transport
        self.retry = retry
        self.now = now
    }

    /// The marker that identifies the issue of operation `id`.
    static func issueMarker(_ id: String) -> String { "<!-- custody-operation: \(id) -->" }

    mutating func run() async -> GitHubAttemptOutcome {
        do {
            switch operation.kind {
            case .upsertFile: return try await upsertFile()
            case .openPR: return try await openPR()
            case .createIssue: return try await createIssue()
            }
        } catch {
            return error.outcome
        }
    }

    // MARK: The operations

    private mutating func upsertFile() async throws(Stop) -> GitHubAttemptOutcome {
        let path = string("path")
        let content = string("content")
        let branch = operation.params["branch"]?.stringValue
        let resource = "\(repositoryPath)/contents/\(GitHubRequest.percentEncoded(path, keepingSlashes: true))"
        let template = "/repos/{owner}/{repo}/contents/{path}"
        let current = try await call(
            GitHubRequest(method: "GET", path: resource, query: branch.map { [GitHubQueryItem("ref", $0)] } ?? [], template: template),
            accepting: [200, 404]
        )
        var sha: String?
        if current.status == 200 {
            let file = current.json
            guard file["type"]?.stringValue == "file" else {
                return .failed(Self.error("not_a_file", status: 200, message: "\(path) is a \(file["type"]?.stringValue ?? "directory"), not a file"))
            }
            sha = file["sha"]?.stringValue
            if file["encoding"]?.stringValue == "base64", let encoded = file["content"]?.stringValue,
                let existing = Data(base64Encoded: encoded, options: .ignoreUnknownCharacters), existing == Data(content.utf8)
            {
                // Already as asked (a retry after an attempt whose answer was lost, or no change):
                // writing again would only add an empty commit.
                return .succeeded(
                    .object([
                        "path": .string(path), "sha": file["sha"] ?? .null, "html_url": file["html_url"] ?? .null, "changed": .bool(false),
                        "created": .bool(false),
                    ])
                )
            }
        }
        var body: [String: JSONValue] = [
            "message": .string(string("message")), "content": .string(Data(content.utf8).base64EncodedString()),
        ]
        if let sha { body["sha"] = .string(sha) }
        if let branch { body["branch"] = .string(branch) }
        let written = try await call(
            GitHubRequest(method: "PUT", path: resource, body: .object(body), template: template),
            accepting: [200, 201],
            // The file changed between the read and the write: read it again and retry.
            retrying: [409]
        )
        let answer = written.json
        return .succeeded(
            .object([
                "path": answer["content"]?["path"] ?? .string(path), "sha": answer["content"]?["sha"] ?? .null,
                "html_url": answer["content"]?["html_url"] ?? .null, "commit_sha": answer["commit"]?["sha"] ?? .null,
                "commit_url": answer["commit"]?["html_url"] ?? .null, "changed": .bool(true), "created": .bool(written.status == 201),
            ])
        )
    }

    private mutating func openPR() async throws(Stop) -> GitHubAttemptOutcome {
        let head = string("head")
        let base = string("base")
        let resource = "\(repositoryPath)/pulls"
        let template = "/repos/{owner}/{repo}/pulls"
        if operation.uncertain {
            let qualifiedHead = head.contains(":") ? head : "\(string("owner")):\(head)"
            let open = try await call(
                GitHubRequest(
                    method: "GET",
                    path: resource,
                    query: [GitHubQueryItem("head", qualifiedHead), GitHubQueryItem("base", base), GitHubQueryItem("state", "open")],
                    template: template
                ),
                accepting: [200]
            )
            if case .array(let pulls) = open.json, let pull = pulls.first {
                return .succeeded(Self.pullSummary(pull, foundExisting: true))
            }
        }
        var body: [String: JSONValue] = ["title": .string(string("title")), "head": .string(head), "base": .string(base)]
        if let text = operation.params["body"] { body["body"] = text }
        let created = try await call(GitHubRequest(method: "POST", path: resource, body: .object(body), template: template), accepting: [201])
        return .succeeded(Self.pullSummary(created.json, foundExisting: false))
    }

    private mutating func createIssue() async throws(Stop) -> GitHubAttemptOutcome {
        let marker = Self.issueMarker(operation.id)
        let resource = "\(repositoryPath)/issues"
        let template = "/repos/{owner}/{repo}/issues"
        if operation.uncertain {
            // Issues updated since the request (a minute earlier, for clocks that differ), newest
            // first: one created by a lost attempt is among them.
            let since = RFC3339.format(operation.requestedAt - 60_000_000_000)
            for page in 1...5 {
                let listed = try await call(
                    GitHubRequest(
                        method: "GET",
                        path: resource,
                        query: [
                            GitHubQueryItem("state", "all"), GitHubQueryItem("since", since), GitHubQueryItem("sort", "created"),
                            GitHubQueryItem("direction", "desc"), GitHubQueryItem("per_page", "100"), GitHubQueryItem("page", String(page)),
                        ],
                        template: template
                    ),
                    accepting: [200]
                )
                guard case .array(let issues) = listed.json else { break }
                if let issue = issues.first(where: { $0["pull_request"] == nil && ($0["body"]?.stringValue?.contains(marker) ?? false) }) {
                    return .succeeded(Self.issueSummary(issue, foundExisting: true))
                }
                if issues.count < 100 { break }
            }
        }
        let text = operation.params["body"]?.stringValue.map { $0 + "\n\n" + marker } ?? marker
        var body: [String: JSONValue] = ["title": .string(string("title")), "body": .string(text)]
        if let labels = operation.params["labels"] { body["labels"] = labels }
        let created = try await call(GitHubRequest(method: "POST", path: resource, body: .object(body), template: template), accepting: [201])
        return .succeeded(Self.issueSummary(created.json, foundExisting: false))
    }

    // MARK: Calls

    /// Why an attempt stopped before its end: its outcome.
    struct Stop: Error {
        var outcome: GitHubAttemptOutcome
    }

    /// A response and its body parsed as JSON (`null` when it is not JSON).
    struct Answer {
        var status: Int
        var json: JSONValue
    }

    /// Sends `request` and records it as an `outbound_call` span; returns the answer when its
    /// status is one of `accepting`, else stops the attempt with the outcome the status means.
    private mutating func call(_ request: GitHubRequest, accepting: Set<Int>, retrying: Set<Int> = []) async throws(Stop) -> Answer {
        let started = ContinuousClock.now
        let startedAt = now()
        let response: GitHubResponse
        do {
            response = try await transport.send(request)
        } catch {
            let failure = Self.error(error.timedOut ? "timeout" : "no_answer", status: nil, message: error.description, request: request)
            record(request, started: started, at: startedAt, status: nil, error: failure)
            throw Stop(outcome: .retry(failure, rateLimitedUntil: nil, uncertain: true))
        }
        let json = (try? JSONDecoder().decode(JSONValue.self, from: Data(response.body.readableBytesView))) ?? .null
        if accepting.contains(response.status) {
            record(request, started: started, at: startedAt, status: response.status, error: nil)
            return Answer(status: response.status, json: json)
        }
        let outcome = classify(response, json: json, request: request, retrying: retrying)
        let failure: JSONValue
        switch outcome {
        case .failed(let error), .retry(let error, _, _): failure = error
        case .succeeded: failure = .null
        }
        record(request, started: started, at: startedAt, status: response.status, error: failure)
        throw Stop(outcome: outcome)
    }

    /// What a status GitHub answered means for the operation (GitHub's REST API documentation,
    /// "Rate limits" and "Troubleshooting"): a rate limit (429, or 403 with no requests left or a
    /// `Retry-After`) waits as told; a 5xx is retried and may have been carried out; anything else
    /// — 401 bad credentials, 403 forbidden, 404, 422 validation failed — fails the operation.
    private func classify(_ response: GitHubResponse, json: JSONValue, request: GitHubRequest, retrying: Set<Int>) -> GitHubAttemptOutcome {
        let status = response.status
        let message = json["message"]?.stringValue ?? String(decoding: response.body.readableBytesView.prefix(300), as: UTF8.self)
        let retryAfter = response.headers["retry-after"].flatMap { Int64($0.filter { $0 != " " }) }
        let remaining = response.headers["x-ratelimit-remaining"]
        let isRateLimit =
            status == 429 || (status == 403 && (retryAfter != nil || remaining == "0" || message.lowercased().contains("rate limit")))
        if isRateLimit {
            let until: Int64
            if let retryAfter {
                until = now() + retryAfter * 1_000_000_000
            } else if remaining == "0", let reset = response.headers["x-ratelimit-reset"].flatMap({ Int64($0) }) {
                until = max(reset * 1_000_000_000, now())
            } else {
                until = now() + retry.rateLimitDelay.nanoseconds
            }
            var failure = Self.error("rate_limited", status: status, message: message, request: request)
            failure = failure.merging(["retry_at": .string(RFC3339.format(until))])
            return .retry(failure, rateLimitedUntil: until, uncertain: false)
        }
        var failure = Self.error(status >= 500 ? "github_unavailable" : "github_error", status: status, message: message, request: request)
        if let errors = json["errors"] { failure = failure.merging(["errors": errors]) }
        if status >= 500 { return .retry(failure, rateLimitedUntil: nil, uncertain: true) }
        if retrying.contains(status) { return .retry(failure, rateLimitedUntil: nil, uncertain: false) }
        return .failed(failure)
    }

    private mutating func record(_ request: GitHubRequest, started: ContinuousClock.Instant, at timestamp: Int64, status: Int?, error: JSONValue?) {
        var details: [String: JSONValue] = [
            "service": .string("github"), "operation_id": .string(operation.id), "kind": .string(operation.kind.rawValue),
            "attempt": .integer(Int64(operation.attempts + 1)), "method": .string(request.method), "path": .string(request.path),
        ]
        if let status { details["status"] = .integer(Int64(status)) }
        if let error { details["error"] = error }
        spans.append(
            Span.orchestrator(
                stage: SpanStage.outboundCall.rawValue,
                operation: "github \(request.method) \(request.template)",
                requestTraceId: operation.traceId,
                durationMs: (ContinuousClock.now - started).inMilliseconds,
                timestamp: timestamp,
                details: JSONValue.object(details).jsonText
            )
        )
    }

    // MARK: Pieces

    private var repositoryPath: String { "/repos/\(GitHubRequest.percentEncoded(string("owner")))/\(GitHubRequest.percentEncoded(string("repo")))" }

    private func string(_ key: String) -> String { operation.params[key]?.stringValue ?? "" }

    static func error(_ code: String, status: Int?, message: String, request: GitHubRequest? = nil) -> JSONValue {
        var object: [String: JSONValue] = ["code": .string(code), "message": .string(String(message.prefix(1000)))]
        if let status { object["status"] = .integer(Int64(status)) }
        if let request { object["request"] = .string("\(request.method) \(request.path)") }
        return .object(object)
    }

    private static func pullSummary(_ pull: JSONValue, foundExisting: Bool) -> JSONValue {
        .object([
            "number": pull["number"] ?? .null, "id": pull["id"] ?? .null, "html_url": pull["html_url"] ?? .null,
            "state": pull["state"] ?? .null, "title": pull["title"] ?? .null, "head": pull["head"]?["ref"] ?? .null,
            "base": pull["base"]?["ref"] ?? .null, "found_existing": .bool(foundExisting),
        ])
    }

    private static func issueSummary(_ issue: JSONValue, foundExisting: Bool) -> JSONValue {
        .object([
            "number": issue["number"] ?? .null, "id": issue["id"] ?? .null, "html_url": issue["html_url"] ?? .null,
            "state": issue["state"] ?? .null, "title": issue["title"] ?? .null, "found_existing": .bool(foundExisting),
        ])
    }
}

extension JSONValue {
    /// The value at `key` of an object (nil for a missing key or a non-object).
    subscript(key: String) -> JSONValue? {
        if case .object(let object) = self { return object[key] }
        return nil
    }

    var stringValue: String? {
        if case .string(let string) = self { return string }
        return nil
    }

    /// This object with `other`'s keys added (or replaced).
    func merging(_ other: [String: JSONValue]) -> JSONValue {
        guard case .object(var object) = self else { return self }
        object.merge(other) { _, new in new }
        return .object(object)
    }
}
