import CompressNIO
import CustodyCore
import CustodyLog
import CustodyServer
import CustodyServerTesting
import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import Testing

/// `POST /api/v2/spans`: Zipkin v2 JSON mapped as docs/api.md says, through the OTLP core path
/// (dedupe included); every field of the wrong type refused with 422 naming it, nothing appended.
@Suite struct ZipkinRouteTests {
    static let spans = #"""
        [{"traceId":"5B8EFFF798038103D269B633813FC60C","id":"EEE19B7EC3C1B174","name":"get /orders","kind":"SERVER",
          "timestamp":1764000000000000,"duration":12500,"localEndpoint":{"serviceName":"ui-factory","ipv4":"10.0.0.1"},
          "remoteEndpoint":{"serviceName":"browser","ipv6":"::1","port":443},
          "annotations":[{"timestamp":1764000000001000,"value":"ws"}],"tags":{"http.method":"GET","custody.stage":"request_received"}},
         {"traceId":"5b8efff798038103d269b633813fc60c","id":"abc","parentId":"eee19b7ec3c1b174","name":"query",
          "timestamp":1764000000002000,"duration":3000,"localEndpoint":{"serviceName":"data-factory"},"tags":{"error":"timeout"},
          "debug":true,"shared":false,"unknownField":[1]}]
        """#

    static func post(_ client: some TestClientProtocol, _ body: String, gzip: Bool = false) async throws -> TestResponse {
        var buffer = ByteBuffer(string: body)
        var headers: HTTPFields = [.contentType: "application/json"]
        if gzip {
            buffer = try buffer.compress(with: .gzip)
            headers[.contentEncoding] = "gzip"
        }
        return try await client.execute(uri: "/api/v2/spans", method: .post, headers: headers, body: buffer) { $0 }
    }

    @Test func zipkinSpansMapAsAPIMDSaysOnceEach() async throws {
        try await ServerFixture.run { runtime, client in
            let answer = try await Self.post(client, Self.spans)
            #expect(answer.status == .accepted && answer.body.readableBytes == 0)
            let trace = try await client.call(.get, "/api/traces/5b8efff798038103d269b633813fc60c")
            let spans = try #require(trace.data["spans"] as? [[String: Any]])
            let byName = Dictionary(uniqueKeysWithValues: spans.map { ($0["operation"] as? String ?? "", $0) })
            let server = try #require(byName["get /orders"])
            #expect(server["span_id"] as? String == "eee19b7ec3c1b174" && server["source"] as? String == "ui-factory")
            #expect(server["stage"] as? String == "request_received" && server["duration_ms"] as? Double == 12.5)
            #expect(server["timestamp"] as? String == "2025-11-24T16:00:00.000Z")
            let details = try #require(server["details"] as? [String: Any])
            #expect(details["kind"] as? String == "SERVER")
            #expect(details["tags"] as? [String: String] == ["http.method": "GET"])
            #expect((details["annotations"] as? [[String: Any]])?.first?["value"] as? String == "ws")
            #expect((details["remoteEndpoint"] as? [String: Any])?["port"] as? Int == 443)
            let query = try #require(byName["query"])
            #expect(query["span_id"] as? String == "0000000000000abc" && query["parent_span_id"] as? String == "eee19b7ec3c1b174")
            #expect(query["stage"] as? String == "error" && query["source"] as? String == "data-factory")
            #expect((query["details"] as? [String: Any])?["error"] as? String == "timeout")

            // Re-sent, gzipped: acknowledged, not appended again.
            #expect(try await Self.post(client, Self.spans, gzip: true).status == .accepted)
            let again = try await client.call(.get, "/api/traces/5b8efff798038103d269b633813fc60c")
            #expect((again.data["spans"] as? [[String: Any]])?.filter { $0["source"] as? String != "orchestrator" }.count == 2)
        }
    }

    @Test func everyFieldOfTheWrongTypeIsRefusedNamingIt() async throws {
        let cases: [(String, String)] = [
            (#"{"traceId":"a1","id":"b2"}"#, ""),
            (#"[5]"#, "[0]"),
            (#"[{"id":"b2"}]"#, "[0].traceId"),
            (#"[{"traceId":7,"id":"b2"}]"#, "[0].traceId"),
            (#"[{"traceId":"xyz","id":"b2"}]"#, "[0].traceId"),
            (#"[{"traceId":"a1"}]"#, "[0].id"),
            (#"[{"traceId":"a1","id":"11112222333344445"}]"#, "[0].id"),
            (#"[{"traceId":"a1","id":"b2","parentId":false}]"#, "[0].parentId"),
            (#"[{"traceId":"a1","id":"b2","name":["n"]}]"#, "[0].name"),
            (#"[{"traceId":"a1","id":"b2","kind":"SIDEWAYS"}]"#, "[0].kind"),
            (#"[{"traceId":"a1","id":"b2","timestamp":"now"}]"#, "[0].timestamp"),
            (#"[{"traceId":"a1","id":"b2","timestamp":-1}]"#, "[0].timestamp"),
            (#"[{"traceId":"a1","id":"b2","duration":1.5}]"#, "[0].duration"),
            (#"[{"traceId":"a1","id":"b2","localEndpoint":"svc"}]"#, "[0].localEndpoint"),
            (#"[{"traceId":"a1","id":"b2","localEndpoint":{"serviceName":1}}]"#, "[0].localEndpoint.serviceName"),
            (#"[{"traceId":"a1","id":"b2","remoteEndpoint":{"port":"443"}}]"#, "[0].remoteEndpoint.port"),
            (#"[{"traceId":"a1","id":"b2","tags":[]}]"#, "[0].tags"),
            (#"[{"traceId":"a1","id":"b2","tags":{"n":1}}]"#, "[0].tags.n"),
            (#"[{"traceId":"a1","id":"b2","annotations":{}}]"#, "[0].annotations"),
            (#"[{"traceId":"a1","id":"b2","annotations":[{"timestamp":1}]}]"#, "[0].annotations[0].value"),
            (#"[{"traceId":"a1","id":"b2","annotations":[{"value":"v","timestamp":"x"}]}]"#, "[0].annotations[0].timestamp"),
            // A valid first span does not let the batch through when the second cannot be taken.
            (
                #"[{"traceId":"a1","id":"b2"},{"traceId":"a1","id":"b3","localEndpoint":{"serviceName":"\#(String(repeating: "s", count: 65))"}}]"#,
                "[1].source"
            ),
            (#"[{"traceId":"a1","id":"b2"#, ""),
        ]
        try await ServerFixture.run { runtime, client in
            let head = await runtime.log.lastSeq
            for (body, field) in cases {
                let answer = Envelope(try await Self.post(client, body))
                if field.isEmpty {
                    #expect(answer.status == .badRequest && answer.errorCode == "invalid_json", "\(body)")
                } else {
                    #expect(answer.status == .unprocessableContent && answer.errorCode == "invalid_argument", "\(body)")
                    #expect(answer.errorField == field, "\(body): \(answer.errorMessage ?? "")")
                }
            }
            let otherType = try await client.execute(
                uri: "/api/v2/spans",
                method: .post,
                headers: [.contentType: "application/x-protobuf"],
                body: ByteBuffer(string: "x")
            ) { $0 }
            #expect(otherType.status == .unsupportedMediaType)
            var bomb = ByteBuffer(string: "[" + String(repeating: " ", count: 9 << 20) + "]")
            let refused = try await client.execute(
                uri: "/api/v2/spans",
                method: .post,
                headers: [.contentType: "application/json", .contentEncoding: "gzip"],
                body: try bomb.compress(with: .gzip)
            ) { $0 }
            #expect(refused.status == .contentTooLarge)
            #expect(await runtime.log.lastSeq == head, "a refused body appended")
        }
    }
}
