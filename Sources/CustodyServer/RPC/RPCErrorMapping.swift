import CustodyCore
import GRPCCore
import GRPCProtobuf

/// The one place where errors become gRPC statuses (schema/custody.proto's header): a
/// ``CoreError`` by its code, with docs/api.md's code and the field in the trailers; anything else is
/// INTERNAL with a message that leaks nothing.
enum RPCErrorMapping {
    static let codeKey = "custody-error-code"
    static let fieldKey = "custody-error-field"

    static func rpcError(_ error: any Error) -> RPCError {
        if let error = error as? RPCError { return error }
        guard let error = error as? CoreError else {
            return RPCError(code: .internalError, message: "the server failed to answer", metadata: [codeKey: "internal"])
        }
        var metadata: Metadata = [codeKey: .string(error.code.description)]
        if let field = error.field { metadata.addString(field, forKey: fieldKey) }
        let code = ErrorStatusTable.grpcCode(error.code)
        if error.code == .overloaded {
            // When to come back: as google.rpc.RetryInfo in the status details (what gRPC
            // clients read), and as plain `retry-after` seconds.
            let seconds = APIError.retryAfterSeconds
            metadata.addString(String(seconds), forKey: "retry-after")
            metadata.add(
                contentsOf: GoogleRPCStatus(code: .resourceExhausted, message: error.message, details: .retryInfo(delay: .seconds(seconds)))
                    .rpcErrorMetadata
            )
        }
        return RPCError(code: code, message: error.message, metadata: metadata)
    }

    /// The core error a failure carries, when it is one that closes its request with an `error`
    /// span (as over HTTP: a valid request about something missing, conflicting, or unservable).
    static func tracedCoreError(_ error: any Error) -> CoreError? {
        guard let error = error as? CoreError, error.closesRequestWithErrorSpan else { return nil }
        return error
    }
}
