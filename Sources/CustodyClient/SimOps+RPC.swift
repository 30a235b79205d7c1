import CustodyRPC
import GRPCCore
import SwiftProtobuf

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// SimOps over gRPC, the worker's side: `custody.v1.SimOps/simulateOperation` answered by
/// ``WorkerTracer/simulateOperation(_:)`` — the same as `POST /simulate`.
public struct SimOpsRPCService: Custody_V1_SimOps.SimpleServiceProtocol {
    let tracer: WorkerTracer

    public init(tracer: WorkerTracer) { self.tracer = tracer }

    public func simulateOperation(
        request: Custody_V1_SimulationRequest,
        context: ServerContext
    ) async throws -> Custody_V1_SimulationAnswer {
        let details = request.hasDetails ? try CustodyRPCConnection.json(request.details) : nil
        do {
            let answer = try await tracer.simulateOperation(
                SimulationRequest(traceId: request.traceID, originalTrace: request.originalTrace, operation: request.operation, details: details)
            )
            var reply = Custody_V1_SimulationAnswer()
            reply.ok = answer.ok
            if let duration = answer.durationMs { reply.durationMs = duration }
            return reply
        } catch {
            throw RPCError(code: .unavailable, message: "recording the simulation failed: \(error.message)")
        }
    }
}

extension GRPCServerService {
    /// A worker's gRPC server for SimOps.
    public static func simOps(
        tracer: WorkerTracer,
        host: String,
        port: Int,
        onListening: @escaping @Sendable (Int) async -> Void = { _ in }
    ) -> GRPCServerService {
        GRPCServerService(host: host, port: port, services: [SimOpsRPCService(tracer: tracer)], onListening: onListening)
    }
}

/// Calls a worker's SimOps over gRPC (`grpc://host:port` in Custody's `workers`), with the
/// replay's trace in `x-trace-id` / `traceparent` metadata: what live replay uses for such a
/// worker. Failures read as ``SimOpsClient``'s do.
public final class SimOpsRPCClient: Sendable {
    let connection: CustodyRPCConnection
    let address: String

    /// `address`: `grpc://host:port`.
    public init(address: String, timeout: Duration = .seconds(5)) throws {
        let hostPort = address.hasPrefix("grpc://") ? String(address.dropFirst(7)) : address
        guard let colon = hostPort.lastIndex(of: ":"), let port = Int(hostPort[hostPort.index(after: colon)...]) else {
            throw CustodyClientError(status: 0, code: "invalid_argument", message: "\(address) is not grpc://host:port")
        }
        var host = String(hostPort[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        connection = try CustodyRPCConnection(host: host, port: port, timeout: timeout)
        self.address = address
    }

    public func simulate(_ call: SimulationRequest) async throws(CustodyClientError) -> SimulationAnswer {
        var request = Custody_V1_SimulationRequest()
        request.traceID = call.traceId
        request.originalTrace = call.originalTrace
        request.operation = call.operation
        if let details = call.details { request.details = try CustodyRPCConnection.structure(details) }
        let address = address
        let timeout = connection.timeout
        let connection = connection
        let outcome: Result<Custody_V1_SimulationAnswer, CustodyClientError> = await CustodyTrace.$current.withValue(
            CustodyTrace(traceId: call.traceId)
        ) {
            do throws(CustodyClientError) {
                return .success(
                    try await connection.call { client, metadata, options in
                        try await Custody_V1_SimOps.Client(wrapping: client).simulateOperation(request, metadata: metadata, options: options)
                    }
                )
            } catch {
                return .failure(error)
            }
        }
        let reply: Custody_V1_SimulationAnswer
        switch outcome {
        case .success(let answer): reply = answer
        case .failure(let error):
            switch error.status {
            case 0 where error.code == "timeout":
                throw CustodyClientError(status: 0, code: "timeout", message: "no answer from \(address) within \(timeout)")
            case 0:
                throw CustodyClientError(status: 0, code: "unreachable", message: "\(address) could not be reached: \(error.message)")
            default:
                throw CustodyClientError(status: error.status, code: error.code, message: "\(address) answered \(error.code): \(error.message)")
            }
        }
        guard reply.ok else { throw CustodyClientError(status: 200, code: "invalid_answer", message: "\(address) did not answer ok") }
        return SimulationAnswer(ok: true, durationMs: reply.hasDurationMs ? reply.durationMs : nil)
    }

    public func close() { connection.close() }
}
