import AsyncHTTPClient
import Logging
import NIOCore
import NIOHTTP1

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The library a worker links to talk to Custody over its HTTP/JSON API (docs/api.md), or over gRPC
/// with a ``CustodyRPCConnection`` (the same typed calls and errors): a typed call
/// for every operation, the current trace (``CustodyTrace``) propagated on every call as
/// `x-trace-id` and W3C `traceparent`, and errors as ``CustodyClientError``.
///
/// Calls are independent and may run concurrently; the client holds no state but its
/// configuration and shares `HTTPClient`'s connection pool.
public struct CustodyClient: Sendable {
    /// Where Custody listens, e.g. `http://127.0.0.1:8787`.
    public let baseURL: String
    /// A bearer token (`ingest`, `operator` or `admin` role), when the server requires one.
    public let token: String?
    /// How long one call may take.
    public let timeout: Duration
    let http: HTTPClient
    /// When set, the operations that the RPC interface serves (TaskOps, DeliveryOps, LogOps,
    /// TraceReplay, GitHubOps and getTrace) go over gRPC; the others (searches, lists, compare)
    /// still go over HTTP to ``baseURL``.
    public let rpc: CustodyRPCConnection?

    public init(
        baseURL: String,
        token: String? = nil,
        timeout: Duration = .seconds(30),
        httpClient: HTTPClient = .shared,
        rpc: CustodyRPCConnection? = nil
    ) {
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.token = token
        self.timeout = timeout
        self.http = httpClient
        self.rpc = rpc
    }

    /// The API's success envelope.
    struct Envelope<Data: Decodable>: Decodable {
        var data: Data
    }

    /// The API's error envelope.
    struct ErrorEnvelope: Decodable {
        struct Body: Decodable {
            struct Details: Decodable { var field: String? }
            var code: String
            var message: String
            var details: Details?
        }
        var error: Body
    }

    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        return encoder
    }()

    static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return decoder
    }()

    /// An empty request or answer.
    struct Nothing: Codable {}

    /// Sends one request in the current trace and decodes the envelope's `data`.
    func send<Answer: Decodable>(
        _ method: HTTPMethod,
        _ path: String,
        query: [(String, String?)] = [],
        headers: [(String, String)] = [],
        body: (some Encodable)? = Nothing?.none,
        as: Answer.Type = Answer.self
    ) async throws(CustodyClientError) -> Answer {
        var payload: ByteBuffer?
        if let body {
            do {
                payload = ByteBuffer(bytes: try Self.encoder.encode(body))
            } catch {
                throw CustodyClientError(status: 0, code: "invalid_argument", message: "the request could not be encoded: \(error)")
            }
        }
        let answer = try await exchange(method, path, query: query, headers: headers, body: payload)
        do {
            return try Self.decoder.decode(Envelope<Answer>.self, from: Data(answer.readableBytesView)).data
        } catch {
            throw CustodyClientError(status: 200, code: "invalid_answer", message: "the answer could not be decoded: \(error)")
        }
    }

    /// Sends raw bytes; returns the answer's body when the status is 2xx, else the server's error.
    func exchange(
        _ method: HTTPMethod,
        _ path: String,
        query: [(String, String?)] = [],
        headers: [(String, String)] = [],
        body: ByteBuffer?
    ) async throws(CustodyClientError)
        -> ByteBuffer
    {
        var url = baseURL + path
        let pairs = query.compactMap { name, value in value.map { "\(name)=\(Self.percentEncoded($0))" } }
        if !pairs.isEmpty { url += "?" + pairs.joined(separator: "&") }
        var request = HTTPClientRequest(url: url)
        request.method = method
        request.headers.add(name: "accept", value: "application/json")
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let token { request.headers.add(name: "authorization", value: "Bearer \(token)") }
        if let trace = CustodyTrace.current {
            request.headers.add(name: "x-trace-id", value: trace.traceId)
            if let parent = TraceParent.header(forTrace: trace.traceId) { request.headers.add(name: "traceparent", value: parent) }
        }
        if let body {
            request.headers.add(name: "content-type", value: "application/json")
            request.body = .bytes(body)
        }
        let response: HTTPClientResponse
        let answer: ByteBuffer
        do {
            response = try await http.execute(request, timeout: timeout.timeAmount)
            answer = try await response.body.collect(upTo: 64 << 20)
        } catch {
            throw CustodyClientError(status: 0, code: "unreachable", message: "\(baseURL) could not be reached: \(error)")
        }
        guard (200..<300).contains(response.status.code) else {
            let retryAfter = response.headers.first(name: "retry-after").flatMap { Int($0) }.map { Duration.seconds($0) }
            if let envelope = try? Self.decoder.decode(ErrorEnvelope.self, from: Data(answer.readableBytesView)) {
                throw CustodyClientError(
                    status: Int(response.status.code),
                    code: envelope.error.code,
                    message: envelope.error.message,
                    field: envelope.error.details?.field,
                    retryAfter: retryAfter
                )
            }
            throw CustodyClientError(
                status: Int(response.status.code),
                code: "http_\(response.status.code)",
                message: String(buffer: answer).prefix(200).description,
                retryAfter: retryAfter
            )
        }
        return answer
    }

    /// A path segment or query value, percent-encoded (RFC 3986 unreserved characters pass).
    static func percentEncoded(_ text: String) -> String {
        var encoded = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                encoded.append(Character(UnicodeScalar(byte)))
            default:
                encoded += "%" + String(byte, radix: 16, uppercase: true).leftPadded(to: 2)
            }
        }
        return encoded
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}

extension Duration {
    /// The same span of time as NIO's `TimeAmount`.
    var timeAmount: TimeAmount {
        .nanoseconds(components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000)
    }
}
