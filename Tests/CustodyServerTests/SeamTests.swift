import CustodyCore
import CustodyLogTesting
import CustodyOTLP
import CustodyServerTesting
import Foundation
import GRPCCore
import HTTPTypes
import NIOCore
import Testing

@testable import CustodyServer

/// The rules both adapters keep, kept in one place.
@Suite struct SeamTests {
    /// Every error code answers with the same meaning over HTTP, gRPC and OTLP/HTTP's
    /// `google.rpc.Status` — one table, so 409, 410 and 503 no longer differ between them.
    @Test func oneStatusTableForHTTPGRPCAndOTLP() throws {
        let codes: [CoreError.Code] = [
            .invalidJSON, .invalidArgument, .payloadTooLarge, .notFound, .taskNotFound, .traceNotFound, .conflict, .overloaded,
            .storageUnavailable, .beyondRetention, .githubNotConfigured, .internalError,
        ]
        for code in codes {
            let error = CoreError(code, "x")
            let http = APIError(error)
            let rpc = RPCErrorMapping.rpcError(error)
            let table = try #require(ErrorStatusTable.entries.first { $0.code == code })
            #expect(Int(http.status.code) == table.httpStatus, "\(code)")
            #expect(rpc.code == table.grpcCode, "\(code)")
            let otlp = OTLPRoutes.otlpError(http, json: true)
            let body = String(buffer: try #require(otlp.customBody?.bytes))
            #expect(body.contains("\"code\":\(table.grpcCode.rawValue)") || (table.grpcCode.rawValue == 0), "\(code): \(body)")
        }
        #expect(RPCErrorMapping.rpcError(CoreError(.conflict, "x")).code == .alreadyExists)
        #expect(RPCErrorMapping.rpcError(CoreError(.beyondRetention, "x")).code == .outOfRange)
        #expect(RPCErrorMapping.rpcError(CoreError(.githubNotConfigured, "x")).code == .failedPrecondition)
        // An HTTP answer that is not a core error's (the server draining) keeps its own meaning.
        #expect(
            ErrorStatusTable.grpcCode(APIError(status: .serviceUnavailable, code: APIError.Code(rawValue: "draining"), message: "x")) == .unavailable
        )
        #expect(ErrorStatusTable.grpcCode(APIError(status: .unsupportedMediaType, code: .unsupportedMediaType, message: "x")) == .invalidArgument)
    }

    /// Every listener's builder refuses an address beyond loopback without tokens, and takes it
    /// with tokens: the rule lives in the server library, not only in `custody serve`.
    @Test func listenersBeyondLoopbackNeedTokens() async throws {
        let directory = ServerFixture.directory()
        defer { removeDataDirectory(directory) }
        let runtime = try await CoreRuntime.open(directory: directory)
        let gate = IngestGate(limit: 4)
        let tokens: [String: AccessRole] = ["secret-token": .admin]
        #expect(throws: ListenerExposure.Refusal.self) {
            _ = try CustodyApplication.application(runtime: runtime, configuration: ServerConfiguration(host: "0.0.0.0", port: 0))
        }
        #expect(throws: ListenerExposure.Refusal.self) {
            _ = try RPCServer(runtime: runtime, configuration: RPCConfiguration(host: "10.1.2.3", port: 0))
        }
        #expect(throws: ListenerExposure.Refusal.self) { _ = try OTLPGRPCServer(runtime: runtime, host: "0.0.0.0", port: 0) }
        #expect(throws: ListenerExposure.Refusal.self) {
            _ = try CustodyApplication.otlpHTTPServer(runtime: runtime, host: "::", port: 0, metrics: ServerMetrics(), gate: gate)
        }
        var configuration = ServerConfiguration(host: "0.0.0.0", port: 0)
        configuration.tokens = tokens
        _ = try CustodyApplication.application(runtime: runtime, configuration: configuration)
        _ = try RPCServer(runtime: runtime, configuration: RPCConfiguration(host: "0.0.0.0", port: 0), tokens: tokens)
        _ = try OTLPGRPCServer(runtime: runtime, host: "0.0.0.0", port: 0, tokens: tokens)
        _ = try CustodyApplication.otlpHTTPServer(runtime: runtime, host: "0.0.0.0", port: 0, metrics: ServerMetrics(), tokens: tokens, gate: gate)
        for host in ["127.0.0.1", "127.8.9.10", "localhost", "::1"] {
            _ = try CustodyApplication.application(runtime: runtime, configuration: ServerConfiguration(host: host, port: 0))
        }
        await runtime.close()
    }
}

extension SeamTests {
    /// An internal failure keeps what caused it through to the adapter (which logs it once),
    /// and the client sees only `internal`.
    @Test func internalErrorsKeepTheirCause() throws {
        struct DiskOnFire: Error {}
        let core = CoreError.internal("reading tasks failed", DiskOnFire())
        #expect(core.cause is DiskOnFire)
        let answer = APIError(converting: core)
        #expect(answer.code == .internalError && answer.status == .internalServerError)
        #expect(answer.cause is DiskOnFire)
        #expect(!answer.message.contains("DiskOnFire"))
        let foreign = APIError(converting: DiskOnFire())
        #expect(foreign.cause is DiskOnFire && foreign.message == "the server failed to answer")
    }
}
