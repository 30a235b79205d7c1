import AsyncHTTPClient
import CustodyClient
import CustodyCore
import NIOCore

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Live replay's calls to the workers, over HTTP with the SDK's ``SimOpsClient``: one per worker
/// of the `workers` configuration (name → base URL). A failure — no answer within the timeout, a
/// refused connection, another status, `ok` not true — becomes a ``ReplayWorkerError`` the replay
/// records as `replay_error`.
public struct HTTPReplayWorkers: ReplayWorkers {
    let clients: [String: SimOpsClient]

    /// `workers`: worker name (a span's `source`) → base URL, e.g. `agent-factory` →
    /// `http://127.0.0.1:9101`.
    public init(workers: [String: String], timeout: Duration = .seconds(5), httpClient: HTTPClient = .shared) {
        clients = workers.mapValues { SimOpsClient(baseURL: $0, timeout: timeout, httpClient: httpClient) }
    }

    public func serves(_ source: String) -> Bool { clients[source] != nil }

    public func simulate(_ call: SimulationCall, on worker: String) async throws -> Double? {
        guard let client = clients[worker] else { throw ReplayWorkerError("no worker named \(worker) is configured") }
        let details = call.details.flatMap { try? JSONDecoder().decode(JSON.self, from: Data($0.bytes.readableBytesView)) }
        do {
            let answer = try await client.simulate(
                SimulationRequest(traceId: call.traceId, originalTrace: call.originalTrace, operation: call.operation, details: details)
            )
            return answer.durationMs
        } catch {
            throw ReplayWorkerError("\(worker): \(error.message)")
        }
    }
}
