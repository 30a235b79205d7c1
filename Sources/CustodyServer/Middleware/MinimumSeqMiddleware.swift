import CustodyCore
import HTTPTypes
import Hummingbird

/// `x-custody-min-seq: N` (docs/api.md, "Cluster mode"): the request is served once this node's
/// projections hold every event up to seq N — the receipt's seq of a write made on another node —
/// or fails `overloaded` (503) after the read timeout; a value that is not a seq is
/// `invalid_argument`. Without the header, nothing changes.
struct MinimumSeqMiddleware: RouterMiddleware {
    typealias Context = CustodyRequestContext
    let runtime: CoreRuntime

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if let value = request.headers[.minimumSeq] {
            try await runtime.awaitApplied(minimumSeq: try CoreRuntime.minimumSeq(parsing: value))
        }
        return try await next(request, context)
    }
}

extension HTTPField.Name {
    static let minimumSeq = HTTPField.Name("x-custody-min-seq")!
}
