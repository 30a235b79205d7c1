import CustodyCore
import HTTPTypes
import Hummingbird

/// GitHubOps over HTTP (docs/api.md "GitHub"): decode → the shared core function → encode.
///
/// A request may carry an `Idempotency-Key` header (a retried request with the same key gets the
/// same operation) and `?wait=true` (the answer waits, up to 30 s, for the operation to finish).
/// The answer is 202 while the operation is pending, 200 once it has finished.
struct GitHubRoutes {
    let runtime: CoreRuntime
    let limits: ServerLimits

    static let idempotencyKey = HTTPField.Name("Idempotency-Key")!

    func register(on router: Router<CustodyRequestContext>) {
        let github = runtime.github
        router.traced("/api/github/files", method: .post, runtime: runtime) { request, context, trace in
            let body = try await JSONBody.decode(UpsertFileBody.self, from: request, context: context, limits: limits)
            let wait = try Self.wait(request, context)
            let operation = try await github.upsertFile(body.change, idempotencyKey: Self.key(request), wait: wait, request: trace)
            return Self.answer(operation, trace: trace)
        }
        router.traced("/api/github/pulls", method: .post, runtime: runtime) { request, context, trace in
            let body = try await JSONBody.decode(OpenPullRequestBody.self, from: request, context: context, limits: limits)
            let wait = try Self.wait(request, context)
            let operation = try await github.openPR(body.draft, idempotencyKey: Self.key(request), wait: wait, request: trace)
            return Self.answer(operation, trace: trace)
        }
        router.traced("/api/github/issues", method: .post, runtime: runtime) { request, context, trace in
            let body = try await JSONBody.decode(CreateIssueBody.self, from: request, context: context, limits: limits)
            let wait = try Self.wait(request, context)
            let operation = try await github.createIssue(body.draft, idempotencyKey: Self.key(request), wait: wait, request: trace)
            return Self.answer(operation, trace: trace)
        }
        router.traced("/api/github/operations/{id}", method: .get, runtime: runtime) { request, context, trace in
            let operation = try await github.getOperation(id: try context.pathValue("id"))
            return APIEnvelope.ok(.object(["operation": operation.jsonValue]))
        }
        router.traced("/api/github/operations", method: .get, runtime: runtime) { request, context, trace in
            let operations = try await github.listOperations(
                status: request.text("status"),
                limit: try QueryValues.integer(request.query("limit"), "limit") ?? 50
            )
            return APIEnvelope.ok(.object(["operations": .array(operations.map(\.jsonValue))]))
        }
    }

    /// `?wait=true`; a waiting request may outlast the slow-client deadline once its body is read.
    static func wait(_ request: Request, _ context: CustodyRequestContext) throws(CoreError) -> Bool {
        let wait = try QueryValues.boolean(request.text("wait"), "wait") ?? false
        if wait { context.allowSlowAnswer() }
        return wait
    }

    static func key(_ request: Request) -> String? {
        request.headers[idempotencyKey]
    }

    static func answer(_ operation: GitHubOperationRecord, trace: RequestTrace) -> Response {
        APIEnvelope.written(.object(["operation": operation.jsonValue]), status: operation.isFinished ? .ok : .accepted, trace: trace)
    }
}
