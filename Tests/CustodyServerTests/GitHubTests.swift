import CustodyClient
import CustodyCore
import CustodyLog
import CustodyServer
import CustodyServerTesting
import Foundation
import GRDB
import HTTPTypes
import HummingbirdTesting
import NIOCore
import Testing

/// GitHubOps over HTTP against ``FakeGitHub`` on a real socket: the outbox, its retries and its
/// idempotency, and what every outcome leaves in `github_operations`, the request's trace and
/// `GET /api/github/operations/{id}`.
@Suite(.timeLimit(.minutes(2))) struct GitHubTests {
    static let token = "ghp_custodyTestToken0123456789abcdefXYZ"
    static let traceHeader = HTTPField.Name("x-trace-id")!
    static let keyHeader = HTTPField.Name("Idempotency-Key")!

    static func settings(
        _ fake: FakeGitHub,
        token: String = token,
        maximumAttempts: UInt32 = 5,
        timeout: Duration = .seconds(5),
        waitLimit: Duration = .seconds(20),
        owner: String? = "acme"
    ) throws -> GitHubSettings {
        var configuration = GitHubConfiguration(token: GitHubToken(token)!, apiURL: fake.baseURL, owner: owner, repository: "widgets")
        configuration.timeout = timeout
        configuration.retry.initialDelay = .milliseconds(50)
        configuration.retry.maximumDelay = .milliseconds(200)
        configuration.retry.maximumAttempts = maximumAttempts
        var settings = try configuration.settings()
        settings.waitLimit = waitLimit
        return settings
    }

    /// The outbox's events of one operation, from the log.
    static func events(of operationId: String, in runtime: CoreRuntime) async throws -> [EventBody] {
        var found: [EventBody] = []
        var next: UInt64 = 1
        while true {
            let records = try await runtime.log.read(from: next, maxRecords: 10_000)
            guard let last = records.last else { return found }
            for record in records {
                let body = try EventCodec.decode(record).body
                switch body {
                case .githubRequested(let event) where event.operationId == operationId: found.append(body)
                case .githubAttemptFailed(let event) where event.operationId == operationId: found.append(body)
                case .githubSucceeded(let event) where event.operationId == operationId: found.append(body)
                case .githubFailed(let event) where event.operationId == operationId: found.append(body)
                default: break
                }
            }
            next = last.seq + 1
        }
    }

    static func operation(_ envelope: Envelope) throws -> [String: Any] {
        try #require(envelope.data["operation"] as? [String: Any], "no operation in \(envelope.json)")
    }

    /// Polls `GET /api/github/operations/{id}` until the operation has finished.
    static func finished(_ id: String, _ client: any TestClientProtocol) async throws -> [String: Any] {
        for _ in 0..<400 {
            let answer = try await client.call(.get, "/api/github/operations/\(id)")
            let operation = try Self.operation(answer)
            if operation["status"] as? String != "pending" { return operation }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw CocoaError(.featureUnsupported)
    }

    @Test func upsertFileCreatesUpdatesAndLeavesAnUnchangedFileAlone() async throws {
        let fake = try await FakeGitHub.start(token: Self.token)
        try await ServerFixture.run(github: try Self.settings(fake)) { runtime, client in
            let created = try await client.call(
                .post,
                "/api/github/files?wait=true",
                json: #"{"path":"docs/notes v1.md","content":"hello\n","message":"add notes"}"#,
                headers: [Self.traceHeader: "gh-upsert-1"]
            )
            #expect(created.status == .ok)
            let first = try Self.operation(created)
            #expect(first["status"] as? String == "succeeded")
            #expect(first["kind"] as? String == "upsert_file")
            #expect(first["trace_id"] as? String == "gh-upsert-1")
            let firstResult = try #require(first["result"] as? [String: Any])
            #expect(firstResult["created"] as? Bool == true)
            #expect(firstResult["path"] as? String == "docs/notes v1.md")
            #expect(fake.file("acme", "widgets", "docs/notes v1.md") == "hello\n")

            // An update: the current sha is fetched and sent.
            let updated = try Self.operation(
                try await client.call(
                    .post,
                    "/api/github/files?wait=true",
                    json: #"{"path":"docs/notes v1.md","content":"hello again\n","message":"more notes","branch":"main"}"#
                )
            )
            #expect(updated["status"] as? String == "succeeded")
            #expect((updated["result"] as? [String: Any])?["created"] as? Bool == false)
            #expect(fake.file("acme", "widgets", "docs/notes v1.md") == "hello again\n")
            let puts = fake.received.filter { $0.method == "PUT" }
            #expect(puts.count == 2)
            #expect(puts.last?.body.contains(#""sha""#) == true)
            #expect(puts.first?.path == "/api/v3/repos/acme/widgets/contents/docs/notes%20v1.md")

            // The same content again: nothing is written.
            let unchanged = try Self.operation(
                try await client.call(
                    .post,
                    "/api/github/files?wait=true",
                    json: #"{"path":"docs/notes v1.md","content":"hello again\n","message":"again"}"#
                )
            )
            #expect((unchanged["result"] as? [String: Any])?["changed"] as? Bool == false)
            #expect(fake.received.filter { $0.method == "PUT" }.count == 2)

            // GET returns it; the row holds it; the request's trace shows the calls.
            let id = try #require(first["id"] as? String)
            let fetched = try Self.operation(try await client.call(.get, "/api/github/operations/\(id)"))
            #expect(fetched["status"] as? String == "succeeded")
            #expect(fetched["attempts"] as? Int == 1)
            let rowStatus = try await runtime.sqliteStore.read { db in
                try String.fetchOne(db, sql: "SELECT status FROM github_operations WHERE id = ?", arguments: [id])
            }
            #expect(rowStatus == "succeeded")
            let trace = try await spans(of: "gh-upsert-1", in: runtime)
            let outbound = trace.filter { $0.stage == "outbound_call" }
            #expect(
                outbound.map(\.operation) == ["github GET /repos/{owner}/{repo}/contents/{path}", "github PUT /repos/{owner}/{repo}/contents/{path}"]
            )
            #expect(outbound.allSatisfy { $0.details?.description.contains(id) == true })
            #expect(trace.contains { $0.stage == "processing" && $0.operation == "github.upsert_file" })
            #expect(trace.contains { $0.stage == "request_received" })
        }
        await fake.stop()
    }

    /// 429 with Retry-After, then 403 with no requests left until x-ratelimit-reset, then
    /// success: each wait is honoured, nothing is checked (GitHub did nothing), one issue exists.
    @Test func rateLimitsAreWaitedOutThenTheIssueIsCreated() async throws {
        let fake = try await FakeGitHub.start(token: Self.token)
        fake.script(
            "POST",
            "/issues",
            .respond(429, headers: ["retry-after": "1"], body: #"{"message":"You have exceeded a secondary rate limit."}"#)
        )
        let reset = Int(Date().timeIntervalSince1970) + 2
        fake.script(
            "POST",
            "/issues",
            .respond(
                403,
                headers: ["x-ratelimit-remaining": "0", "x-ratelimit-reset": String(reset)],
                body: #"{"message":"API rate limit exceeded for user ID 1.","status":"403"}"#
            )
        )
        try await ServerFixture.run(github: try Self.settings(fake)) { runtime, client in
            let started = Date()
            let answer = try await client.call(
                .post,
                "/api/github/issues?wait=true",
                json: #"{"title":"Flaky factory","body":"agent-factory fails","labels":["ops"]}"#
            )
            let operation = try Self.operation(answer)
            #expect(operation["status"] as? String == "succeeded")
            #expect(operation["attempts"] as? Int == 3)
            #expect(Date().timeIntervalSince1970 >= Double(reset) - 0.01, "the reset time was not waited for")
            #expect(Date().timeIntervalSince(started) >= 1)
            #expect(fake.issueCount == 1)
            #expect(!fake.received.contains { $0.method == "GET" }, "a rate-limited request did nothing: there is nothing to check")
            let id = try #require(operation["id"] as? String)
            let failures = try await Self.events(of: id, in: runtime).compactMap { body -> String? in
                if case .githubAttemptFailed(let event) = body { return event.error.description }
                return nil
            }
            #expect(failures.count == 2)
            #expect(failures.allSatisfy { $0.contains(#""code":"rate_limited""#) })
            #expect(fake.issueBodies.first?.hasPrefix("agent-factory fails\n\n<!-- custody-operation: \(id) -->") == true)
        }
        await fake.stop()
    }

    /// A 502 after GitHub made the pull request: the retry finds it instead of making another. A
    /// 502 before anything was made: the retry looks, finds nothing, and creates it.
    @Test func a502IsRetriedWithoutDuplicatingTheChange() async throws {
        let fake = try await FakeGitHub.start(token: Self.token)
        fake.script("POST", "/pulls", .applyThenRespond(502))
        fake.script("POST", "/issues", .respond(502, body: "<html>502 Bad Gateway</html>"))
        try await ServerFixture.run(github: try Self.settings(fake)) { runtime, client in
            let pull = try Self.operation(
                try await client.call(
                    .post,
                    "/api/github/pulls?wait=true",
                    json: #"{"title":"Add notes","head":"notes","base":"main","body":"Please review"}"#,
                    headers: [Self.traceHeader: "gh-pr-502"]
                )
            )
            #expect(pull["status"] as? String == "succeeded")
            #expect(pull["attempts"] as? Int == 2)
            let result = try #require(pull["result"] as? [String: Any])
            #expect(result["found_existing"] as? Bool == true)
            #expect(result["number"] as? Int == 1)
            #expect(fake.pullCount == 1)
            #expect(fake.received.filter { $0.method == "POST" && $0.path.hasSuffix("/pulls") }.count == 1)
            #expect(fake.received.contains { $0.method == "GET" && $0.path.hasSuffix("/pulls") && $0.query["head"] == "acme:notes" })
            let trace = try await spans(of: "gh-pr-502", in: runtime)
            #expect(trace.contains { $0.stage == "outbound_call" && $0.details?.description.contains(#""status":502"#) == true })

            let issue = try Self.operation(try await client.call(.post, "/api/github/issues?wait=true", json: #"{"title":"After a 502"}"#))
            #expect(issue["status"] as? String == "succeeded")
            #expect((issue["result"] as? [String: Any])?["found_existing"] as? Bool == false)
            #expect(fake.issueCount == 1)
        }
        await fake.stop()
    }

    /// 422 (a pull request for that head exists) and 401 (bad credentials) fail at once.
    @Test func permanentFailuresAreNotRetried() async throws {
        let fake = try await FakeGitHub.start(token: Self.token)
        try await ServerFixture.run(github: try Self.settings(fake)) { runtime, client in
            _ = try await client.call(.post, "/api/github/pulls?wait=true", json: #"{"title":"One","head":"feature","base":"main"}"#)
            let second = try Self.operation(
                try await client.call(
                    .post,
                    "/api/github/pulls?wait=true",
                    json: #"{"title":"Two","head":"feature","base":"main"}"#,
                    headers: [Self.traceHeader: "gh-422"]
                )
            )
            #expect(second["status"] as? String == "failed")
            #expect(second["attempts"] as? Int == 1)
            let error = try #require(second["error"] as? [String: Any])
            #expect(error["status"] as? Int == 422)
            #expect(error["code"] as? String == "github_error")
            #expect("\(error["errors"] ?? "")".contains("A pull request already exists"))
            #expect(fake.received.filter { $0.method == "POST" }.count == 2)
            // The failure is an error of the request's trace.
            let trace = try await spans(of: "gh-422", in: runtime)
            #expect(trace.contains { $0.stage == "outbound_call" && $0.isError })
            let summary = try await client.call(.get, "/api/traces/gh-422")
            #expect(((summary.data["summary"] as? [String: Any])?["error_count"] as? Int ?? 0) >= 1)
        }
        try await ServerFixture.run(github: try Self.settings(fake, token: "ghp_wrongToken")) { runtime, client in
            let denied = try Self.operation(try await client.call(.post, "/api/github/issues?wait=true", json: #"{"title":"Denied"}"#))
            #expect(denied["status"] as? String == "failed")
            #expect(denied["attempts"] as? Int == 1)
            #expect((denied["error"] as? [String: Any])?["message"] as? String == "Bad credentials")
        }
        await fake.stop()
    }

    /// The connection drops after GitHub made the issue: the outcome is unknown, so the retry
    /// looks for the issue's marker and finds it.
    @Test func aDroppedConnectionIsResolvedByCheckingGitHub() async throws {
        let fake = try await FakeGitHub.start(token: Self.token)
        fake.script("POST", "/issues", .applyThenDrop)
        try await ServerFixture.run(github: try Self.settings(fake)) { runtime, client in
            let issue = try Self.operation(try await client.call(.post, "/api/github/issues?wait=true", json: #"{"title":"Dropped","body":"b"}"#))
            #expect(issue["status"] as? String == "succeeded")
            #expect(issue["attempts"] as? Int == 2)
            #expect((issue["result"] as? [String: Any])?["found_existing"] as? Bool == true)
            #expect(fake.issueCount == 1)
            let id = try #require(issue["id"] as? String)
            let events = try await Self.events(of: id, in: runtime)
            #expect(events.map(\.type) == [.githubRequested, .githubAttemptFailed, .githubSucceeded])
            if case .githubAttemptFailed(let failed) = events[1] { #expect(failed.error.description.contains(#""code":"no_answer""#)) }
        }
        await fake.stop()
    }

    /// One key, one operation: a retried request gets the same operation and GitHub sees one
    /// issue; the key used for another request is a conflict.
    @Test func anIdempotencyKeyMakesOneOperation() async throws {
        let fake = try await FakeGitHub.start(token: Self.token)
        try await ServerFixture.run(github: try Self.settings(fake)) { runtime, client in
            let body = #"{"title":"Once","body":"only once"}"#
            async let first = client.call(.post, "/api/github/issues", json: body, headers: [Self.keyHeader: "order-42-issue"])
            async let second = client.call(.post, "/api/github/issues", json: body, headers: [Self.keyHeader: "order-42-issue"])
            let (a, b) = try await (first, second)
            let idA = try #require(try Self.operation(a)["id"] as? String)
            let idB = try #require(try Self.operation(b)["id"] as? String)
            #expect(idA == idB)
            #expect(try Self.operation(a)["idempotency_key"] as? String == "order-42-issue")
            let done = try await Self.finished(idA, client)
            #expect(done["status"] as? String == "succeeded")
            let again = try await client.call(.post, "/api/github/issues?wait=true", json: body, headers: [Self.keyHeader: "order-42-issue"])
            #expect(again.status == .ok)
            #expect(try Self.operation(again)["id"] as? String == idA)
            #expect(fake.issueCount == 1)
            let conflict = try await client.call(
                .post,
                "/api/github/issues",
                json: #"{"title":"Other"}"#,
                headers: [Self.keyHeader: "order-42-issue"]
            )
            #expect(conflict.status == .conflict)
            #expect(conflict.errorCode == "conflict")
            let requested = try await Self.events(of: idA, in: runtime).filter { $0.type == .githubRequested }
            #expect(requested.count == 1)
        }
        await fake.stop()
    }

    /// 503 on every attempt: the operation fails after the last one, saying why.
    @Test func transientFailuresEndWhenTheAttemptsAreSpent() async throws {
        let fake = try await FakeGitHub.start(token: Self.token)
        for _ in 0..<3 { fake.script("POST", "/issues", .respond(503, body: #"{"message":"Service Unavailable"}"#)) }
        try await ServerFixture.run(github: try Self.settings(fake, maximumAttempts: 3)) { runtime, client in
            let answer = try await client.call(.post, "/api/github/issues", json: #"{"title":"Never"}"#)
            #expect(answer.status == .accepted)
            let pending = try Self.operation(answer)
            #expect(pending["status"] as? String == "pending")
            let done = try await Self.finished(try #require(pending["id"] as? String), client)
            #expect(done["status"] as? String == "failed")
            #expect(done["attempts"] as? Int == 3)
            let error = try #require(done["error"] as? [String: Any])
            #expect(error["retries_exhausted"] as? Bool == true)
            #expect(error["status"] as? Int == 503)
            #expect(fake.issueCount == 0)
        }
        await fake.stop()
    }

    /// `?wait=true` answers 202 with the pending operation when it is not done within the wait
    /// limit; it finishes later (here after GitHub never answered and the retry found the issue).
    @Test func waitingEndsAtTheWaitLimit() async throws {
        let fake = try await FakeGitHub.start(token: Self.token)
        fake.script("POST", "/issues", .applyThenHang)
        let settings = try Self.settings(fake, timeout: .seconds(1), waitLimit: .milliseconds(300))
        try await ServerFixture.run(github: settings) { runtime, client in
            let answer = try await client.call(.post, "/api/github/issues?wait=true", json: #"{"title":"Slow"}"#)
            #expect(answer.status == .accepted)
            let id = try #require(try Self.operation(answer)["id"] as? String)
            let done = try await Self.finished(id, client)
            #expect(done["status"] as? String == "succeeded")
            #expect((done["result"] as? [String: Any])?["found_existing"] as? Bool == true)
            #expect(
                (try await Self.events(of: id, in: runtime)).contains { body in
                    if case .githubAttemptFailed(let failed) = body { return failed.error.description.contains(#""code":"timeout""#) }
                    return false
                }
            )
            #expect(fake.issueCount == 1)
        }
        await fake.stop()
    }

    /// The SDK's GitHub calls over a real socket: typed operations, the key, the wait, the list.
    @Test func theSDKDrivesEveryGitHubOperation() async throws {
        let fake = try await FakeGitHub.start(token: Self.token)
        try await ServerFixture.run(.live, github: try Self.settings(fake)) { _, test in
            let custody = CustodyClient(baseURL: "http://127.0.0.1:\(try #require(test.port))")
            let file = try await custody.upsertFile(path: "a.txt", content: "A", message: "add a", wait: true)
            #expect(file.status == "succeeded" && file.kind == "upsert_file" && file.result?["created"] == true)
            let pull = try await custody.openPR(title: "A", head: "a", base: "main", idempotencyKey: "pr-a")
            #expect(pull.status == "pending" && pull.idempotencyKey == "pr-a")
            let again = try await custody.openPR(title: "A", head: "a", base: "main", idempotencyKey: "pr-a", wait: true)
            #expect(again.id == pull.id && again.status == "succeeded" && again.result?["number"] == 1)
            let issue = try await custody.createIssue(title: "B", body: "b", labels: ["x"], owner: "acme", repo: "gadgets", wait: true)
            #expect(issue.status == "succeeded" && issue.params["repo"] == "gadgets")
            #expect(try await custody.getOperation(issue.id).status == "succeeded")
            #expect(try await custody.listOperations().map(\.id) == [issue.id, pull.id, file.id])
            #expect(try await custody.listOperations(status: "failed").isEmpty)
            do {
                _ = try await custody.createIssue(title: "")
                Issue.record("an empty title was accepted")
            } catch let error as CustodyClientError {
                #expect(error.code == "invalid_argument" && error.field == "title")
            }
        }
        await fake.stop()
    }

    @Test func withoutATokenOperationsFailFast() async throws {
        try await ServerFixture.run { runtime, client in
            let answer = try await client.call(.post, "/api/github/issues", json: #"{"title":"x"}"#, headers: [Self.traceHeader: "gh-off"])
            #expect(answer.status == .serviceUnavailable)
            #expect(answer.errorCode == "github_not_configured")
            let trace = try await spans(of: "gh-off", in: runtime)
            #expect(trace.contains { $0.stage == "error" })
            let stats = try await client.call(.get, "/api/admin/stats")
            #expect((stats.data["outbox"] as? [String: Any])?["configured"] as? Bool == false)
        }
    }

    /// Invalid requests are 422 naming the field, and append nothing.
    @Test func invalidRequestsNameTheFieldAndAppendNothing() async throws {
        let fake = try await FakeGitHub.start(token: Self.token)
        try await ServerFixture.run(github: try Self.settings(fake, owner: nil)) { runtime, client in
            let head = await runtime.log.lastSeq
            let cases: [(String, String, String)] = [
                ("/api/github/issues", #"{"body":"no title","owner":"acme"}"#, "title"),
                ("/api/github/issues", #"{"title":"t","owner":"acme","labels":"bug"}"#, "labels"),
                ("/api/github/issues", #"{"title":"no owner anywhere"}"#, "owner"),
                ("/api/github/files", #"{"path":"../etc/passwd","content":"x","message":"m","owner":"acme"}"#, "path"),
                ("/api/github/files", #"{"path":"a.md","message":"m","owner":"acme"}"#, "content"),
                ("/api/github/files", #"{"path":"a.md","content":"x","message":"m","owner":"acme","branch":"bad..name"}"#, "branch"),
                ("/api/github/pulls", #"{"title":"t","head":"x","owner":"acme"}"#, "base"),
                ("/api/github/pulls", #"{"title":"t","head":"x","base":"main","owner":"-acme"}"#, "owner"),
                ("/api/github/pulls", #"{"title":"t","head":"x","base":"main","owner":"acme","repo":"a/b"}"#, "repo"),
            ]
            for (path, body, field) in cases {
                let answer = try await client.call(.post, path, json: body)
                #expect(answer.status == .unprocessableContent, "\(body)")
                #expect(answer.errorField == field, "\(body): \(answer.json)")
            }
            let wait = try await client.call(.post, "/api/github/issues?wait=maybe", json: #"{"title":"t","owner":"acme"}"#)
            #expect(wait.errorField == "wait")
            let unknown = try await client.call(.get, "/api/github/operations/nope")
            #expect(unknown.status == .notFound)
            // Nothing but the traced 404's spans: no github.requested.
            var next: UInt64 = head + 1
            while true {
                let records = try await runtime.log.read(from: next, maxRecords: 1000)
                guard let last = records.last else { break }
                for record in records {
                    let body = try EventCodec.decode(record).body
                    if case .span(let span) = body { #expect(span.operation.contains("operations")) } else { Issue.record("appended \(body.type)") }
                }
                next = last.seq + 1
            }
            #expect(fake.received.isEmpty)
        }
        await fake.stop()
    }
}
