import AsyncHTTPClient
import NIOCore
import NIOHTTP1

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A SimOps `simulateOperation` call (docs/api.md "Workers (SimOps)"): Custody's live replay asks a
/// worker to act out one operation of an original trace under the replay's trace id.
public struct SimulationRequest: Sendable, Hashable, Codable {
    /// The replay's trace: the worker records its `sim_replay` span under it.
    public var traceId: String
    public var originalTrace: String
    public var operation: String
    public var details: JSON?

    /// Decodes a request as a worker receives it (snake_case JSON).
    public init(json: some Sequence<UInt8>) throws {
        self = try CustodyClient.decoder.decode(SimulationRequest.self, from: Data(json))
    }

    public init(traceId: String, originalTrace: String, operation: String, details: JSON? = nil) {
        self.traceId = traceId
        self.originalTrace = originalTrace
        self.operation = operation
        self.details = details
    }
}

/// A worker's answer to ``SimulationRequest``.
public struct SimulationAnswer: Sendable, Hashable, Codable {
    public var ok: Bool
    public var durationMs: Double?

    public init(ok: Bool, durationMs: Double?) {
        self.ok = ok
        self.durationMs = durationMs
    }
}

extension WorkerTracer {
    /// SimOps `simulateOperation` for this worker: records a `sim_replay` span (source = this
    /// worker) under the replay's trace, durably, before answering.
    public func simulateOperation(_ request: SimulationRequest) async throws(CustodyClientError) -> SimulationAnswer {
        let clock = ContinuousClock.now
        let started = Date()
        var details: [String: JSON] = ["simulated_from": .string(request.originalTrace)]
        if let original = request.details { details["original_details"] = original }
        let entry = LogEntry(
            traceId: request.traceId,
            spanId: CustodyTrace.newSpanId(),
            source: source,
            stage: "sim_replay",
            operation: request.operation,
            durationMs: Self.milliseconds(since: clock),
            timestamp: Self.timestamp(started),
            details: .object(details)
        )
        let outcome: Result<String, CustodyClientError> = await CustodyTrace.$current.withValue(CustodyTrace(traceId: request.traceId)) {
            do throws(CustodyClientError) {
                return .success(try await client.recordLog(entry))
            } catch {
                return .failure(error)
            }
        }
        _ = try outcome.get()
        return SimulationAnswer(ok: true, durationMs: Self.milliseconds(since: clock))
    }
}

/// Calls a worker's SimOps over HTTP: `POST {url}/simulate` with the replay's trace in
/// `x-trace-id` and `traceparent`. What Custody's live replay uses.
public struct SimOpsClient: Sendable {
    public let baseURL: String
    public let timeout: Duration
    let http: HTTPClient

    public init(baseURL: String, timeout: Duration = .seconds(5), httpClient: HTTPClient = .shared) {
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.timeout = timeout
        self.http = httpClient
    }

    /// The worker's answer; a failure says what went wrong in words fit for a `replay_error`
    /// span (no answer in time, unreachable, another status, `ok` not true).
    public func simulate(_ call: SimulationRequest) async throws(CustodyClientError) -> SimulationAnswer {
        var request = HTTPClientRequest(url: baseURL + "/simulate")
        request.method = .POST
        request.headers.add(name: "content-type", value: "application/json")
        request.headers.add(name: "x-trace-id", value: call.traceId)
        if let parent = TraceParent.header(forTrace: call.traceId) { request.headers.add(name: "traceparent", value: parent) }
        do {
            request.body = .bytes(ByteBuffer(bytes: try CustodyClient.encoder.encode(call)))
        } catch {
            throw CustodyClientError(status: 0, code: "invalid_argument", message: "the call could not be encoded: \(error)")
        }
        let response: HTTPClientResponse
        let body: ByteBuffer
        do {
            response = try await http.execute(request, timeout: timeout.timeAmount)
            body = try await response.body.collect(upTo: 64 << 10)
        } catch let error as HTTPClientError where error == .deadlineExceeded || error == .readTimeout || error == .connectTimeout {
            throw CustodyClientError(status: 0, code: "timeout", message: "no answer from \(baseURL) within \(timeout)")
        } catch {
            throw CustodyClientError(status: 0, code: "unreachable", message: "\(baseURL) could not be reached: \(error)")
        }
        guard response.status == .ok else {
            throw CustodyClientError(
                status: Int(response.status.code),
                code: "http_\(response.status.code)",
                message: "\(baseURL) answered \(response.status.code): \(String(buffer: body).prefix(200))"
            )
        }
        guard let answer = try? CustodyClient.decoder.decode(SimulationAnswer.self, from: Data(body.readableBytesView)), answer.ok else {
            throw CustodyClientError(status: 200, code: "invalid_answer", message: "\(baseURL) did not answer {\"ok\": true}")
        }
        return answer
    }
}
