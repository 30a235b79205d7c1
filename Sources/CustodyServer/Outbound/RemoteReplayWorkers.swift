import AsyncHTTPClient
import CustodyClient
import CustodyCore
import NIOCore

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Live replay's calls to the workers, by the scheme of each worker's address in the `workers`
/// configuration: `http://` / `https://` over HTTP with the SDK's ``SimOpsClient`` (`POST
/// /simulate`), `grpc://host:port` over gRPC with ``SimOpsRPCClient`` (`custody.v1.SimOps`). A
/// failure — no answer within the timeout, a refused connection, another status, `ok` not true —
/// becomes a ``ReplayWorkerError`` the replay records as `replay_error`.
public struct RemoteReplayWorkers: ReplayWorkers {
    enum Worker: Sendable {
        case http(SimOpsClient)
        case grpc(SimOpsRPCClient)
    }

    let workers: [String: Worker]

    /// `workers`: worker name (a span's `source`) → address, e.g. `agent-factory` →
    /// `http://127.0.0.1:9101` or `grpc://127.0.0.1:9201`.
    public init(workers: [String: String], timeout: Duration = .seconds(5), httpClient: HTTPClient = .shared) {
        var resolved: [String: Worker] = [:]
        for (name, address) in workers {
            if address.hasPrefix("grpc://"), let client = try? SimOpsRPCClient(address: address, timeout: timeout) {
                resolved[name] = .grpc(client)
            } else {
                resolved[name] = .http(SimOpsClient(baseURL: address, timeout: timeout, httpClient: httpClient))
            }
        }
        self.workers = resolved
    }

    public func serves(_ source: String) -> Bool { workers[source] != nil }

    public func simulate(_ call: SimulationCall, on worker: String) async throws -> Double? {
        guard let client = workers[worker] else { throw ReplayWorkerError("no worker named \(worker) is configured") }
        let details = call.details.flatMap { try? JSONDecoder().decode(JSON.self, from: Data($0.bytes.readableBytesView)) }
        let request = SimulationRequest(traceId: call.traceId, originalTrace: call.originalTrace, operation: call.operation, details: details)
        do {
            switch client {
            case .http(let client): return try await client.simulate(request).durationMs
            case .grpc(let client): return try await client.simulate(request).durationMs
            }
        } catch {
            throw ReplayWorkerError("\(worker): \(error.message)")
        }
    }
}
