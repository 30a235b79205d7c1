import AsyncHTTPClient
import CustodyCore
import CustodyLog
import CustodyOTLP
import CustodyServer
import CustodyServerTesting
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import GRPCProtobuf
import HTTPTypes
import HummingbirdTesting
import NIOCore
import NIOHTTP1
import SwiftProtobuf
import Testing

/// OTLP/gRPC (`TraceService/Export`) and OTLP/HTTP on their own ports, over real sockets with
/// grpc-swift's client: the mapping and dedupe shared with OTLP/HTTP, partial success, gzip,
/// the size limit once decompressed, malformed messages, tokens and overload — a refused call
/// appends nothing.
@Suite(.timeLimit(.minutes(2))) struct OTLPGRPCTests {
    typealias Client = GRPCClient<HTTP2ClientTransport.Posix>
    typealias Request = OTLPSpanMapping.Request
    typealias Response = Opentelemetry_Proto_Collector_Trace_V1_ExportTraceServiceResponse

    /// Sends bytes as they are: what an exporter's message looks like on the wire, or not.
    struct RawSerializer: MessageSerializer {
        func serialize<Bytes: GRPCContiguousBytes>(_ message: [UInt8]) throws -> Bytes { Bytes(message) }
    }

    static let export = MethodDescriptor(fullyQualifiedService: "opentelemetry.proto.collector.trace.v1.TraceService", method: "Export")

    /// A server with OTLP/gRPC (and OTLP/HTTP) on free ports; `body` gets a client of the gRPC one.
    static func withOTLP<Value: Sendable>(
        limits: ServerLimits = ServerLimits(),
        tokens: [String: AccessRole] = [:],
        _ body: @escaping @Sendable (CoreRuntime, Client, _ otlpHTTPPort: Int, any TestClientProtocol) async throws -> Value
    ) async throws -> Value {
        let grpcPort = Shared(0)
        let httpPort = Shared(0)
        return try await ServerFixture.run(limits: limits, tokens: tokens, otlpGRPCPort: grpcPort, otlpHTTPPort: httpPort) { runtime, http in
            for _ in 0..<400 where grpcPort.withLock({ $0 }) == 0 || httpPort.withLock({ $0 }) == 0 {
                try await Task.sleep(for: .milliseconds(10))
            }
            let bound = grpcPort.withLock { $0 }
            try #require(bound != 0, "the OTLP/gRPC server did not start")
            var config = HTTP2ClientTransport.Posix.Config.defaults
            config.compression.enabledAlgorithms = [.gzip, .deflate]
            config.http2.maxFrameSize = 1 << 20
            return try await withGRPCClient(
                transport: try .http2NIOPosix(target: .ipv4(address: "127.0.0.1", port: bound), transportSecurity: .plaintext, config: config)
            ) { client in
                try await body(runtime, client, httpPort.withLock { $0 }, http)
            }
        }
    }

    /// One export call with `bytes` as the message.
    static func send(
        _ bytes: [UInt8],
        _ client: Client,
        compression: GRPCCore.CompressionAlgorithm = .none,
        token: String? = nil
    ) async throws -> Response {
        var options = CallOptions.defaults
        options.compression = compression
        var metadata: Metadata = [:]
        if let token { metadata.addString("Bearer \(token)", forKey: "authorization") }
        return try await client.unary(
            request: ClientRequest(message: bytes, metadata: metadata),
            descriptor: Self.export,
            serializer: RawSerializer(),
            deserializer: ProtobufDeserializer<Response>(),
            options: options
        ) { try $0.message }
    }

    /// An export of spans `spanIds` of one trace from `service`, with an attribute, an event and
    /// a child; span id 0 is an invalid span (no id), for partial success.
    static func request(spanIds: [UInt8], service: String = "agent-factory", attribute bytes: Int = 8) -> [UInt8] {
        var request = Request()
        var resourceSpans = Opentelemetry_Proto_Trace_V1_ResourceSpans()
        var name = Opentelemetry_Proto_Common_V1_KeyValue()
        name.key = "service.name"
        name.value.stringValue = service
        resourceSpans.resource.attributes = [name]
        var scope = Opentelemetry_Proto_Trace_V1_ScopeSpans()
        scope.spans = spanIds.map { id in
            var span = Opentelemetry_Proto_Trace_V1_Span()
            span.traceID = Data(repeating: 0x4F, count: 16)
            span.spanID = id == 0 ? Data() : Data([id, 1, 2, 3, 4, 5, 6, 7])
            if id > 1 { span.parentSpanID = Data([1, 1, 2, 3, 4, 5, 6, 7]) }
            span.name = "export\(id)"
            span.kind = .client
            span.startTimeUnixNano = 1_764_000_000_000_000_000 + UInt64(id) * 1_000_000
            span.endTimeUnixNano = span.startTimeUnixNano + 4_000_000
            var attribute = Opentelemetry_Proto_Common_V1_KeyValue()
            attribute.key = "payload"
            attribute.value.stringValue = String(repeating: "p", count: bytes)
            span.attributes = [attribute]
            var event = Opentelemetry_Proto_Trace_V1_Span.Event()
            event.name = "queued"
            event.timeUnixNano = span.startTimeUnixNano + 1
            span.events = [event]
            if id == 3 {
                span.status.code = .error
                span.status.message = "no capacity"
            }
            return span
        }
        resourceSpans.scopeSpans = [scope]
        request.resourceSpans = [resourceSpans]
        return (try? request.serializedBytes()) ?? []
    }

    static let traceId = String(repeating: "4f", count: 16)

    @Test func exportsMapAsOverHTTPOnceEachWithPartialSuccess() async throws {
        try await Self.withOTLP { runtime, client, _, http in
            let first = try await Self.send(Self.request(spanIds: [1, 2, 3]), client)
            #expect(!first.hasPartialSuccess)
            let trace = try await http.call(.get, "/api/traces/\(Self.traceId)")
            let spans = try #require(trace.data["spans"] as? [[String: Any]])
            let byName = Dictionary(uniqueKeysWithValues: spans.map { ($0["operation"] as? String ?? "", $0) })
            #expect(Set(byName.keys) == ["export1", "export2", "export3"])
            let child = try #require(byName["export2"])
            #expect(child["source"] as? String == "agent-factory" && child["stage"] as? String == "span")
            #expect(child["parent_span_id"] as? String == "0101020304050607" && child["duration_ms"] as? Double == 4)
            let details = try #require(child["details"] as? [String: Any])
            #expect(details["kind"] as? String == "SPAN_KIND_CLIENT")
            #expect((details["attributes"] as? [String: Any])?["payload"] as? String == "pppppppp")
            #expect(((details["events"] as? [[String: Any]])?.first)?["name"] as? String == "queued")
            #expect(byName["export3"]?["stage"] as? String == "error")
            #expect((byName["export3"]?["details"] as? [String: Any])?["error"] as? String == "no capacity")

            // Re-sent (gzip this time) with one new span and one without an id: the new one is
            // taken, the old ones are not appended again, the bad one is counted.
            let second = try await Self.send(Self.request(spanIds: [1, 2, 3, 4, 0]), client, compression: .gzip)
            #expect(second.partialSuccess.rejectedSpans == 1 && second.partialSuccess.errorMessage.contains("span_id"))
            let after = try await http.call(.get, "/api/traces/\(Self.traceId)")
            let operations = (after.data["spans"] as? [[String: Any]])?.compactMap { $0["operation"] as? String } ?? []
            #expect(operations.filter { $0.hasPrefix("export") }.sorted() == ["export1", "export2", "export3", "export4"])

            // The call itself is recorded in its own trace, as RPC calls are.
            let exports = try await spansMatching(runtime) { $0.operation == "opentelemetry.proto.collector.trace.v1.TraceService/Export" }
            #expect(exports.contains { $0.stage == "request_received" })
        }
    }

    @Test func malformedOversizedAndBombedMessagesAreRefusedAndAppendNothing() async throws {
        var limits = ServerLimits()
        limits.maximumOTLPBytes = 256 << 10
        try await Self.withOTLP(limits: limits) { runtime, client, _, _ in
            let valid = Self.request(spanIds: [1, 2])
            let truncated = Array(valid.dropLast(3))
            var flipped = valid
            flipped[1] ^= 0x40  // the first field's length now runs past the end
            for bad: [UInt8] in [truncated, flipped, [0x0F], [0x0A, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]] {
                #expect(throws: (any Error).self) { try Request(serializedBytes: bad) }
                let head = await runtime.log.lastSeq
                let error = await #expect(throws: RPCError.self) { try await Self.send(bad, client) }
                #expect(error?.code == .invalidArgument, "\(Hex.encode(bad))")
                #expect(await runtime.log.lastSeq == head, "a refused export appended")
            }
            // Over the limit as sent, and under it as sent but over it once inflated: refused
            // with a status that says so.
            let head = await runtime.log.lastSeq
            let oversized = await #expect(throws: RPCError.self) { try await Self.send(Self.request(spanIds: [5], attribute: 300 << 10), client) }
            #expect(oversized?.code == .resourceExhausted && oversized?.message.contains("the limit is 262144") == true)
            let inflated = await #expect(throws: RPCError.self) {
                try await Self.send(Self.request(spanIds: [6], attribute: 400 << 10), client, compression: .gzip)
            }
            #expect(inflated?.code == .resourceExhausted && inflated?.message.contains("decompressed") == true)
            // A bomb (8 MiB inflated from a few KiB): the transport stops inflating at twice the
            // limit and resets the stream.
            let bomb = await #expect(throws: RPCError.self) {
                try await Self.send(Self.request(spanIds: [6], attribute: 8 << 20), client, compression: .gzip)
            }
            #expect(bomb?.code == .resourceExhausted || bomb?.code == .unavailable)
            #expect(await runtime.log.lastSeq == head, "a refused export appended")
            // The server is still there.
            let after = try await Self.send(Self.request(spanIds: [7]), client, compression: .gzip)
            #expect(after.partialSuccess.rejectedSpans == 0)
        }
    }

    @Test func tokensNeedTheIngestRole() async throws {
        let tokens: [String: AccessRole] = ["ingest-token": .ingest, "operator-token": .operator]
        try await Self.withOTLP(tokens: tokens) { runtime, client, _, _ in
            let head = await runtime.log.lastSeq
            for token in [nil, "wrong-token"] {
                let error = await #expect(throws: RPCError.self) { try await Self.send(Self.request(spanIds: [1]), client, token: token) }
                #expect(error?.code == .unauthenticated)
            }
            #expect(await runtime.log.lastSeq == head)
            _ = try await Self.send(Self.request(spanIds: [1]), client, token: "ingest-token")
            _ = try await Self.send(Self.request(spanIds: [2]), client, token: "operator-token")
            #expect(await runtime.log.lastSeq > head)
        }
    }

    @Test func anOverloadedServerAnswersResourceExhaustedWithRetryInfo() async throws {
        var limits = ServerLimits()
        limits.maximumConcurrentIngest = 0
        try await Self.withOTLP(limits: limits) { runtime, client, _, _ in
            let head = await runtime.log.lastSeq
            let error = await #expect(throws: RPCError.self) { try await Self.send(Self.request(spanIds: [1]), client) }
            #expect(error?.code == .resourceExhausted)
            let status = try #require(try error?.unpackGoogleRPCStatus())
            #expect(status.details.contains { $0.retryInfo != nil })
            #expect(await runtime.log.lastSeq == head)
        }
    }

    @Test func otlpHTTPIsServedOnItsOwnPort() async throws {
        try await Self.withOTLP { runtime, _, port, _ in
            #expect(port != 0)
            let http = HTTPClient(eventLoopGroupProvider: .singleton)
            var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/v1/traces")
            request.method = .POST
            request.headers.add(name: "content-type", value: "application/x-protobuf")
            request.body = .bytes(ByteBuffer(bytes: Self.request(spanIds: [9])))
            let answer = try await http.execute(request, timeout: .seconds(30))
            #expect(answer.status.code == 200)
            let body = try await answer.body.collect(upTo: 1 << 20)
            #expect(try !Response(serializedBytes: Array(body.readableBytesView)).hasPartialSuccess)
            #expect(try await spansMatching(runtime) { $0.operation == "export9" }.count == 1)
            // Only OTLP is there: the rest of the API is not.
            let other = try await http.execute(HTTPClientRequest(url: "http://127.0.0.1:\(port)/api/admin/stats"), timeout: .seconds(30))
            #expect(other.status.code == 404)
            try await http.shutdown()
        }
    }
}
