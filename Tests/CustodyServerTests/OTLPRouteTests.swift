import CompressNIO
import CustodyCore
import CustodyLog
import CustodyOTLP
import CustodyServer
import CustodyServerTesting
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import SwiftProtobuf
import Testing

@Suite struct OTLPRouteTests {
    static func export(spanIds: [UInt8], names: [String] = []) -> [UInt8] {
        var resourceSpans = Opentelemetry_Proto_Trace_V1_ResourceSpans()
        var service = Opentelemetry_Proto_Common_V1_KeyValue()
        service.key = "service.name"
        service.value.stringValue = "data-factory"
        resourceSpans.resource.attributes = [service]
        var scope = Opentelemetry_Proto_Trace_V1_ScopeSpans()
        scope.spans = spanIds.enumerated().map { index, id in
            var span = Opentelemetry_Proto_Trace_V1_Span()
            span.traceID = Data(repeating: 0xAB, count: 16)
            span.spanID = Data(repeating: id, count: 8)
            span.name = index < names.count ? names[index] : "load"
            span.startTimeUnixNano = 1_764_000_000_000_000_000 + UInt64(index) * 1_000_000
            span.endTimeUnixNano = span.startTimeUnixNano + 2_000_000
            return span
        }
        resourceSpans.scopeSpans = [scope]
        var request = OTLPSpanMapping.Request()
        request.resourceSpans = [resourceSpans]
        return (try? request.serializedBytes()) ?? []
    }

    func post(_ client: some TestClientProtocol, _ bytes: [UInt8], type: String = "application/x-protobuf") async throws -> TestResponse {
        try await client.execute(uri: "/v1/traces", method: .post, headers: [.contentType: type], body: ByteBuffer(bytes: bytes)) { $0 }
    }

    /// `POST /v1/traces` with a gzip body.
    static func postGzip(_ client: some TestClientProtocol, _ body: ByteBuffer, type: String = "application/x-protobuf") async throws -> TestResponse
    {
        try await client.execute(uri: "/v1/traces", method: .post, headers: [.contentType: type, .contentEncoding: "gzip"], body: body) { $0 }
    }

    @Test func protobufExportsBecomeSpansOnceEach() async throws {
        try await ServerFixture.run(.router) { runtime, client in
            let first = try await post(client, Self.export(spanIds: [1, 2, 3]))
            #expect(first.status == .ok && first.headers[.contentType] == "application/x-protobuf")
            let answer = try Opentelemetry_Proto_Collector_Trace_V1_ExportTraceServiceResponse(serializedBytes: Array(first.body.readableBytesView))
            #expect(!answer.hasPartialSuccess)
            let traceId = String(repeating: "ab", count: 16)
            let trace = try await client.call(.get, "/api/traces/\(traceId)")
            let spans = try #require(trace.data["spans"] as? [[String: Any]])
            #expect(spans.count == 3 && spans.allSatisfy { $0["source"] as? String == "data-factory" && $0["stage"] as? String == "span" })
            #expect(spans.first?["duration_ms"] as? Double == 2)

            // Re-sent: acknowledged, not appended again; a new span in the same export is.
            let again = try await post(client, Self.export(spanIds: [1, 2, 3, 4]))
            #expect(again.status == .ok)
            let after = try await client.call(.get, "/api/traces/\(traceId)")
            #expect((after.data["spans"] as? [[String: Any]])?.count == 4)
            _ = runtime
        }
    }

    @Test func badSpansArePartialSuccessAndBadBodiesAppendNothing() async throws {
        try await ServerFixture.run(.router) { runtime, client in
            let partial = try await post(client, Self.export(spanIds: [7, 8], names: ["ok", "bad\u{01}name"]))
            #expect(partial.status == .ok)
            let answer = try Opentelemetry_Proto_Collector_Trace_V1_ExportTraceServiceResponse(serializedBytes: Array(partial.body.readableBytesView))
            #expect(answer.partialSuccess.rejectedSpans == 1)
            #expect(answer.partialSuccess.errorMessage.contains("operation"))

            // The previous request's response_sent goes in after its answer.
            await runtime.context.responses.idle()
            let before = await runtime.log.lastSeq
            let truncated = Array(Self.export(spanIds: [9]).dropLast(5))
            let bad = try await post(client, truncated)
            #expect(bad.status == .badRequest && bad.headers[.contentType] == "application/x-protobuf")
            // OTLP answers errors with a google.rpc.Status in the request's encoding.
            let status = try Google_Rpc_Status(serializedBytes: Array(bad.body.readableBytesView))
            #expect(status.code == 3 && status.message.contains("ExportTraceServiceRequest"))
            let text = try await post(client, Array("{}".utf8), type: "text/plain")
            #expect(text.status == .unsupportedMediaType)
            let wrongMethod = try await client.call(.get, "/v1/traces")
            #expect(wrongMethod.status == .methodNotAllowed)
            await runtime.context.responses.idle()
            #expect(await runtime.log.lastSeq == before)
        }
    }

    @Test func jsonEncodingWithHexIdsAndGzipBodies() async throws {
        try await ServerFixture.run(.router) { _, client in
            let json = #"""
                {"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"ui-factory"}}]},
                 "scopeSpans":[{"scope":{"name":"s"},"spans":[
                   {"traceId":"5B8EFFF798038103D269B633813FC60C","spanId":"EEE19B7EC3C1B174","name":"render","kind":2,
                    "startTimeUnixNano":"1764000000000000000","endTimeUnixNano":1764000000003000000,
                    "attributes":[{"key":"n","value":{"intValue":"7"}}],"status":{"code":2,"message":"boom"},"unknownField":1}]}]}]}
                """#
            let answer = try await client.execute(
                uri: "/v1/traces",
                method: .post,
                headers: [.contentType: "application/json"],
                body: ByteBuffer(string: json)
            ) { $0 }
            #expect(answer.status == .ok && answer.headers[.contentType] == "application/json")
            let trace = try await client.call(.get, "/api/traces/5b8efff798038103d269b633813fc60c")
            let span = try #require((trace.data["spans"] as? [[String: Any]])?.first)
            #expect(span["span_id"] as? String == "eee19b7ec3c1b174" && span["stage"] as? String == "error")
            #expect(span["source"] as? String == "ui-factory" && span["duration_ms"] as? Double == 3)
            #expect(((span["details"] as? [String: Any])?["attributes"] as? [String: Any])?["n"] as? Int == 7)

            var plain = ByteBuffer(bytes: Self.export(spanIds: [42]))
            let gzipped = try plain.compress(with: .gzip)
            let zipped = try await Self.postGzip(client, gzipped)
            #expect(zipped.status == .ok)
            let badHex = try await client.execute(
                uri: "/v1/traces",
                method: .post,
                headers: [.contentType: "application/json"],
                body: ByteBuffer(string: #"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"xyz","spanId":"00"}]}]}]}"#)
            ) { $0 }
            #expect(badHex.status == .badRequest && badHex.headers[.contentType] == "application/json")
            let status = try Google_Rpc_Status(jsonUTF8Bytes: Array(badHex.body.readableBytesView))
            #expect(status.code == 3 && status.message.contains("traceId"))
            let corrupt = try await Self.postGzip(client, ByteBuffer(bytes: [0x1F, 0x8B, 1, 2, 3]))
            #expect(corrupt.status == .badRequest)
        }
    }

    /// docs/api.md: the 20 MiB limit holds after decompression. A small gzip body that inflates to
    /// ~24 MiB (one span with a huge attribute) is 413 and appends nothing, not even its request
    /// spans; one just under the limit is taken; the ingest counters count the bytes received.
    @Test func theSizeLimitAppliesWhileInflating() async throws {
        @Sendable func export(spans: Int = 1, attribute bytes: Int) throws -> ByteBuffer {
            var request = OTLPSpanMapping.Request()
            var resourceSpans = Opentelemetry_Proto_Trace_V1_ResourceSpans()
            var scope = Opentelemetry_Proto_Trace_V1_ScopeSpans()
            scope.spans = (0..<spans).map { index in
                var span = Opentelemetry_Proto_Trace_V1_Span()
                span.traceID = Data(repeating: 0xCD, count: 16)
                span.spanID = Data([UInt8(index & 0xFF), UInt8(index >> 8), 1, 2, 3, 4, 5, 6])
                span.name = "huge"
                var attribute = Opentelemetry_Proto_Common_V1_KeyValue()
                attribute.key = "blob"
                attribute.value.stringValue = String(repeating: "z", count: bytes)
                span.attributes = [attribute]
                return span
            }
            resourceSpans.scopeSpans = [scope]
            request.resourceSpans = [resourceSpans]
            var plain = ByteBuffer(bytes: try request.serializedBytes() as [UInt8])
            return try plain.compress(with: .gzip)
        }
        try await ServerFixture.run(.router) { runtime, client in
            let bomb = try export(attribute: 24 << 20)
            #expect(bomb.readableBytes < 1 << 20)
            let head = await runtime.log.lastSeq
            let refused = try await Self.postGzip(client, bomb)
            #expect(refused.status == .contentTooLarge)
            let status = try Google_Rpc_Status(serializedBytes: Array(refused.body.readableBytesView))
            #expect(status.message.contains("decompressed"))
            #expect(await runtime.log.lastSeq == head, "a refused export appended")

            // 400 spans of 5 KB each (2 MB inflated): taken.
            let small = try export(spans: 400, attribute: 5_000)
            let taken = try await Self.postGzip(client, small)
            #expect(taken.status == .ok)
            #expect(await runtime.log.lastSeq >= head + 400)
        }
    }

    /// Gzip bodies that inflate to exactly a multiple of the inflating window, one byte either
    /// side, and mostly padding (highly compressible: the input runs out while output is still
    /// pending) come out whole.
    @Test func gzipBodiesInflateWholeAtWindowBoundaries() async throws {
        try await ServerFixture.run(.router) { _, client in
            for (index, size) in [65_535, 65_536, 65_537, 131_072, 5 * 65_536, 5 * 65_536 + 1].enumerated() {
                let spanId = String(format: "%016x", 0xF00 + index)
                let json =
                    #"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"ui-factory"}}]},"#
                    + #""scopeSpans":[{"spans":[{"traceId":"00000000000000000000000000000abc","spanId":"\#(spanId)","name":"w","#
                    + #""startTimeUnixNano":"1764000000000000000","endTimeUnixNano":"1764000000001000000"}]}]}]}"#
                var plain = ByteBuffer(string: json + String(repeating: " ", count: size - json.utf8.count))
                #expect(plain.readableBytes == size)
                let zipped = try plain.compress(with: .gzip)
                let status = try await Self.postGzip(client, zipped, type: "application/json").status
                #expect(status == .ok, "inflated size \(size)")
            }
            let trace = try await client.call(.get, "/api/traces/00000000000000000000000000000abc")
            let ids = Set(((trace.data["spans"] as? [[String: Any]]) ?? []).compactMap { $0["span_id"] as? String })
            #expect(ids == Set((0..<6).map { String(format: "%016x", 0xF00 + $0) }))
        }
    }
}
