import CustodyCore
import Synchronization

/// Bounds the ingest requests being processed at once. A request over the bound is refused at
/// once with `overloaded` (429 and `Retry-After`) instead of waiting in a queue that could grow
/// without limit: memory stays bounded and the client knows to back off (docs/benchmarks.md R7).
/// One gate is shared by every listener that ingests (HTTP, OTLP/HTTP, OTLP/gRPC), so the bound
/// is the server's, not each port's.
public final class IngestGate: Sendable {
    private let inFlight = Atomic<Int>(0)
    let limit: Int
    /// Requests refused since start.
    let refused = Atomic<Int>(0)

    public init(limit: Int) { self.limit = limit }

    /// Runs `body` if there is room, else throws `overloaded`.
    func admit<T>(_ body: () async throws -> T) async throws -> T {
        let (admitted, _) = inFlight.wrappingAdd(1, ordering: .acquiringAndReleasing)
        defer { inFlight.wrappingSubtract(1, ordering: .acquiringAndReleasing) }
        guard admitted < limit else {
            refused.wrappingAdd(1, ordering: .relaxed)
            throw CoreError(.overloaded, "the server is taking all the ingest it can; retry after a second")
        }
        return try await body()
    }

    var current: Int { inFlight.load(ordering: .relaxed) }
}
