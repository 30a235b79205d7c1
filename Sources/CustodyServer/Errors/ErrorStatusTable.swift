import CustodyCore
import GRPCCore
import HTTPTypes

/// The one table of how errors answer: each of docs/api.md's error codes with its HTTP status
/// and its gRPC status code. ``APIError`` takes the HTTP status from here, ``RPCErrorMapping``
/// the gRPC code, and OTLP/HTTP's `google.rpc.Status` the gRPC code of an HTTP answer, so the
/// three always agree.
enum ErrorStatusTable {
    struct Entry: Sendable {
        /// docs/api.md's `code`; nil for answers that are not a core error's (the HTTP layer's own).
        var code: CoreError.Code?
        var httpStatus: Int
        var grpcCode: RPCError.Code
    }

    static let entries: [Entry] = [
        Entry(code: .invalidJSON, httpStatus: 400, grpcCode: .invalidArgument),
        Entry(code: .invalidArgument, httpStatus: 422, grpcCode: .invalidArgument),
        Entry(code: .payloadTooLarge, httpStatus: 413, grpcCode: .invalidArgument),
        Entry(code: .notFound, httpStatus: 404, grpcCode: .notFound),
        Entry(code: .taskNotFound, httpStatus: 404, grpcCode: .notFound),
        Entry(code: .traceNotFound, httpStatus: 404, grpcCode: .notFound),
        Entry(code: .conflict, httpStatus: 409, grpcCode: .alreadyExists),
        Entry(code: .overloaded, httpStatus: 429, grpcCode: .resourceExhausted),
        Entry(code: .storageUnavailable, httpStatus: 507, grpcCode: .unavailable),
        Entry(code: .beyondRetention, httpStatus: 410, grpcCode: .outOfRange),
        // The server cannot serve this until it is configured: not a passing outage.
        Entry(code: .githubNotConfigured, httpStatus: 503, grpcCode: .failedPrecondition),
        Entry(code: .internalError, httpStatus: 500, grpcCode: .internalError),
        // The HTTP layer's own answers.
        Entry(code: nil, httpStatus: 400, grpcCode: .invalidArgument),
        Entry(code: nil, httpStatus: 401, grpcCode: .unauthenticated),
        Entry(code: nil, httpStatus: 403, grpcCode: .permissionDenied),
        Entry(code: nil, httpStatus: 404, grpcCode: .notFound),
        Entry(code: nil, httpStatus: 405, grpcCode: .unimplemented),
        Entry(code: nil, httpStatus: 413, grpcCode: .invalidArgument),
        Entry(code: nil, httpStatus: 414, grpcCode: .invalidArgument),
        Entry(code: nil, httpStatus: 415, grpcCode: .invalidArgument),
        Entry(code: nil, httpStatus: 422, grpcCode: .invalidArgument),
        Entry(code: nil, httpStatus: 429, grpcCode: .resourceExhausted),
        Entry(code: nil, httpStatus: 431, grpcCode: .invalidArgument),
        // Draining or not ready: come back later, or elsewhere.
        Entry(code: nil, httpStatus: 503, grpcCode: .unavailable),
        Entry(code: nil, httpStatus: 507, grpcCode: .unavailable),
    ]

    /// The HTTP status of a core error code.
    static func httpStatus(_ code: CoreError.Code) -> HTTPResponse.Status {
        let status = entries.first { $0.code == code }?.httpStatus ?? 500
        return HTTPResponse.Status(code: status)
    }

    /// The gRPC code of a core error code.
    static func grpcCode(_ code: CoreError.Code) -> RPCError.Code {
        entries.first { $0.code == code }?.grpcCode ?? .internalError
    }

    /// The gRPC code of an HTTP answer: its core error's when it has one, else its status's.
    static func grpcCode(_ error: APIError) -> RPCError.Code {
        if let code = error.coreError?.code { return grpcCode(code) }
        let status = Int(error.status.code)
        return entries.first { $0.code == nil && $0.httpStatus == status }?.grpcCode ?? .internalError
    }
}
