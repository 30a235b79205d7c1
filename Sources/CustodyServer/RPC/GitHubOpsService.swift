import CustodyCore
import CustodyRPC
import GRPCCore

/// GitHubOps over gRPC: decode → the core function the HTTP route calls → encode.
/// `idempotency_key` and `wait` are HTTP's `Idempotency-Key` header and `?wait=true`.
struct GitHubOpsService: Custody_V1_GitHubOps.SimpleServiceProtocol {
    let runtime: CoreRuntime

    func upsertFile(request: Custody_V1_UpsertFileRequest, context: ServerContext) async throws -> Custody_V1_GitHubOperation {
        let change = GitHubFileChange(
            path: request.path.nonEmpty,
            content: request.content,
            message: request.message.nonEmpty,
            owner: request.hasOwner ? request.owner : nil,
            repo: request.hasRepo ? request.repo : nil,
            branch: request.hasBranch ? request.branch : nil
        )
        let operation = try await runtime.github.upsertFile(
            change,
            idempotencyKey: request.hasIdempotencyKey ? request.idempotencyKey : nil,
            wait: request.wait,
            request: RPCRequestTrace.request
        )
        return try ProtobufJSON.message(Custody_V1_GitHubOperation.self, from: operation.jsonValue)
    }

    func openPR(request: Custody_V1_OpenPRRequest, context: ServerContext) async throws -> Custody_V1_GitHubOperation {
        let draft = GitHubPullRequestDraft(
            title: request.title.nonEmpty,
            head: request.head.nonEmpty,
            base: request.base.nonEmpty,
            body: request.hasBody ? request.body : nil,
            owner: request.hasOwner ? request.owner : nil,
            repo: request.hasRepo ? request.repo : nil
        )
        let operation = try await runtime.github.openPR(
            draft,
            idempotencyKey: request.hasIdempotencyKey ? request.idempotencyKey : nil,
            wait: request.wait,
            request: RPCRequestTrace.request
        )
        return try ProtobufJSON.message(Custody_V1_GitHubOperation.self, from: operation.jsonValue)
    }

    func createIssue(request: Custody_V1_CreateIssueRequest, context: ServerContext) async throws -> Custody_V1_GitHubOperation {
        let draft = GitHubIssueDraft(
            title: request.title.nonEmpty,
            body: request.hasBody ? request.body : nil,
            labels: request.labels.isEmpty ? nil : request.labels,
            owner: request.hasOwner ? request.owner : nil,
            repo: request.hasRepo ? request.repo : nil
        )
        let operation = try await runtime.github.createIssue(
            draft,
            idempotencyKey: request.hasIdempotencyKey ? request.idempotencyKey : nil,
            wait: request.wait,
            request: RPCRequestTrace.request
        )
        return try ProtobufJSON.message(Custody_V1_GitHubOperation.self, from: operation.jsonValue)
    }

    func getOperation(request: Custody_V1_GetOperationRequest, context: ServerContext) async throws -> Custody_V1_GitHubOperation {
        let operation = try await runtime.github.getOperation(id: request.id)
        return try ProtobufJSON.message(Custody_V1_GitHubOperation.self, from: operation.jsonValue)
    }
}
