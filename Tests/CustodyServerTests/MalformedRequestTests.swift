import CustodyCore
import CustodyLog
import CustodyServer
import CustodyServerTesting
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

/// One bad request and the answer it must get.
struct BadRequest: CustomStringConvertible, Sendable {
    var method: HTTPRequest.Method
    var path: String
    var body: [UInt8]?
    var contentType: String? = "application/json"
    var headers: [String: String] = [:]
    var status: Int
    var code: String
    var field: String?

    var description: String { "\(method.rawValue) \(path) \(body.map { String(decoding: $0.prefix(60), as: UTF8.self) } ?? "")" }

    static func post(
        _ path: String,
        _ body: String,
        _ status: Int,
        _ code: String,
        field: String? = nil,
        contentType: String? = "application/json"
    ) -> BadRequest {
        BadRequest(method: .post, path: path, body: Array(body.utf8), contentType: contentType, status: status, code: code, field: field)
    }

    static func post(_ path: String, bytes: [UInt8], _ status: Int, _ code: String, field: String? = nil) -> BadRequest {
        BadRequest(method: .post, path: path, body: bytes, status: status, code: code, field: field)
    }

    static func get(_ path: String, _ status: Int, _ code: String, field: String? = nil, headers: [String: String] = [:]) -> BadRequest {
        BadRequest(method: .get, path: path, body: nil, contentType: nil, headers: headers, status: status, code: code, field: field)
    }

    static func method(_ method: HTTPRequest.Method, _ path: String) -> BadRequest {
        BadRequest(method: method, path: path, body: nil, contentType: nil, status: 405, code: "method_not_allowed")
    }
}

/// docs/benchmarks.md R6: bad requests of every kind get the envelope's status and code — never a crash,
/// a 5xx or a hang — and append nothing to the log.
@Suite struct MalformedRequestTests {
    static func long(_ n: Int) -> String { String(repeating: "a", count: n) }
    static func nested(_ n: Int) -> String { String(repeating: "[", count: n) + String(repeating: "]", count: n) }

    static let cases: [BadRequest] = {
        var cases: [BadRequest] = []
        let logs = "/api/logs"
        // Not JSON, or not the JSON expected at the top.
        for body in [
            "", "{", "not json", "[1,2", "nul", "123", "\"text\"", "true", "null", "{'source':'a'}", "{\"source\":\"a\"} x", "{}{}", "{\"source\":}",
            "{\"source\" \"a\"}", "[,]",
        ] {
            cases.append(.post(logs, body, 400, "invalid_json"))
        }
        // Fields of the wrong type or out of range, named.
        let fieldCases: [(String, String)] = [
            (#"{"source": 5}"#, "source"), (#"{"stage": []}"#, "stage"), (#"{"operation": {}}"#, "operation"),
            (#"{"duration_ms": "12"}"#, "duration_ms"), (#"{"duration_ms": -1}"#, "duration_ms"), (#"{"timestamp": "yesterday"}"#, "timestamp"),
            (#"{"timestamp": "2026-13-01T00:00:00Z"}"#, "timestamp"), (#"{"timestamp": "2026-02-30T00:00:00Z"}"#, "timestamp"),
            (#"{"timestamp": 12345}"#, "timestamp"), (#"{"details": "x"}"#, "details"), (#"{"details": [1]}"#, "details"),
            (#"{"details": 3}"#, "details"), (#"{"trace_id": "has space"}"#, "trace_id"), (#"{"trace_id": ""}"#, "trace_id"),
            (#"{"trace_id": "\#(long(129))"}"#, "trace_id"), (#"{"trace_id": 42}"#, "trace_id"), (#"{"source": "\#(long(65))"}"#, "source"),
            (#"{"operation": "\#(long(257))"}"#, "operation"), (#"{"stage": "\#(long(65))"}"#, "stage"), (#"{"source": ""}"#, "source"),
            (#"{"source": "a\u0000b"}"#, "source"), (#"{"stage": "a\nb"}"#, "stage"), (#"{"operation": "x\u007f"}"#, "operation"),
            (#"{"task_uuid": 5}"#, "task_uuid"), (#"{"span_id": true}"#, "span_id"), (#"{"parent_span_id": 1.5}"#, "parent_span_id"),
            (#"{"span_id": "\#(long(129))"}"#, "span_id"), (#"{"entries": 5}"#, "entries"), (#"{"entries": [5]}"#, "entries[0]"),
            (#"[{"source": 1}]"#, "entries[0].source"), (#"[{"source": "ok"}, {"duration_ms": "x"}]"#, "entries[1].duration_ms"),
            ("[]", "entries"), (#"{"entries": []}"#, "entries"), (#"{"entries": {"source": "a"}}"#, "entries"),
            (#"[{"source":"a"}, 7]"#, "entries[1]"),
            // Durations a timestamp cannot hold (one crashed the server before they were refused).
            (#"{"duration_ms": 1e13}"#, "duration_ms"), (#"{"duration_ms": 1.7976931348623157e308}"#, "duration_ms"),
            (#"{"timestamp": "2262-04-11T00:00:00Z", "duration_ms": 1e11}"#, "duration_ms"),
            (#"{"timestamp": "2262-04-11T23:47:16.999999999Z"}"#, "timestamp"), (#"{"timestamp": "1500-01-01T00:00:00Z"}"#, "timestamp"),
        ]
        for (body, field) in fieldCases { cases.append(.post(logs, body, 422, "invalid_argument", field: field)) }
        cases.append(.post(logs, "[" + Array(repeating: "{}", count: 10_001).joined(separator: ",") + "]", 422, "invalid_argument", field: "entries"))
        // Sizes and nesting.
        cases.append(.post(logs, #"{"details": {"blob": "\#(long(70_000))"}}"#, 413, "payload_too_large", field: "details"))
        cases.append(.post(logs, #"{"details": {"blob": "\#(long(300_000))"}}"#, 413, "payload_too_large"))
        cases.append(.post(logs, #"{"details": {"a": \#(nested(100))}}"#, 400, "invalid_json"))
        cases.append(.post(logs, nested(65), 400, "invalid_json"))
        cases.append(.post(logs, String(repeating: "{\"a\":", count: 80) + "1" + String(repeating: "}", count: 80), 400, "invalid_json"))
        // Bytes that are not valid JSON text: NUL, invalid UTF-8, control characters, a BOM-less UTF-16.
        cases.append(.post(logs, bytes: Array(#"{"source":"a"#.utf8) + [0] + Array(#"b"}"#.utf8), 400, "invalid_json"))
        cases.append(.post(logs, bytes: Array(#"{"source":""#.utf8) + [0xFF, 0xFE] + Array(#""}"#.utf8), 400, "invalid_json"))
        cases.append(.post(logs, bytes: Array(#"{"source":""#.utf8) + [0xC3] + Array(#""}"#.utf8), 400, "invalid_json"))
        cases.append(.post(logs, bytes: Array(#"{"source":"a"#.utf8) + [0x0A] + Array(#"b"}"#.utf8), 400, "invalid_json"))
        cases.append(.post(logs, bytes: [0, 0x7B, 0, 0x7D], 400, "invalid_json"))
        cases.append(.post(logs, bytes: [0xED, 0xA0, 0x80], 400, "invalid_json"))
        // Media types.
        for type in ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/xml", "application/jsonx"] {
            cases.append(.post(logs, #"{"source":"a"}"#, 415, "unsupported_media_type", contentType: type))
        }

        let tasks = "/api/tasks"
        cases += [
            .post(tasks, "", 400, "invalid_json"), .post(tasks, "[]", 400, "invalid_json"),
            .post(tasks, #"{"order_id":"o","payload":{}"#, 400, "invalid_json"),
            .post(tasks, #"{"order_id": 1, "payload": {}}"#, 422, "invalid_argument", field: "order_id"),
            .post(tasks, #"{"payload": {}}"#, 422, "invalid_argument", field: "order_id"),
            .post(tasks, #"{"order_id": "o"}"#, 422, "invalid_argument", field: "payload"),
            .post(tasks, #"{"order_id": "o", "payload": []}"#, 422, "invalid_argument", field: "payload"),
            .post(tasks, #"{"order_id": "o", "payload": "x"}"#, 422, "invalid_argument", field: "payload"),
            .post(tasks, #"{"order_id": "", "payload": {}}"#, 422, "invalid_argument", field: "order_id"),
            .post(tasks, #"{"order_id": "o", "payload": {}, "uuid": 7}"#, 422, "invalid_argument", field: "uuid"),
            .post(tasks, #"{"order_id": "o\u0001", "payload": {}}"#, 422, "invalid_argument", field: "order_id"),
            .post(tasks, #"{"order_id": "\#(long(200))", "payload": {}}"#, 422, "invalid_argument", field: "order_id"),
            .post(tasks, #"{"order_id":"o","payload":{}}"#, 415, "unsupported_media_type", contentType: "text/plain"),
        ]
        let update = "/api/tasks/updateStatus"
        cases += [
            .post(update, "{}", 422, "invalid_argument", field: "task_id"),
            .post(update, #"{"task_id":"t"}"#, 422, "invalid_argument", field: "status"),
            .post(update, #"{"task_id":"t","status":"done"}"#, 422, "invalid_argument", field: "status"),
            .post(update, #"{"task_id":5,"status":"complete"}"#, 422, "invalid_argument", field: "task_id"),
            .post(update, #"{"task_id":"t","status":null}"#, 422, "invalid_argument", field: "status"),
            .post(update, #"{"task_id":"t","status":["complete"]}"#, 422, "invalid_argument", field: "status"),
            .post(update, "\"x\"", 400, "invalid_json"), .post(update, "[]", 400, "invalid_json"),
        ]
        let errors = "/api/tasks/errors"
        cases += [
            .post(errors, "{}", 422, "invalid_argument", field: "source"),
            .post(errors, #"{"source":"s"}"#, 422, "invalid_argument", field: "message"),
            .post(errors, #"{"source":"s","message":5}"#, 422, "invalid_argument", field: "message"),
            .post(errors, #"{"source":"s","message":"m","payload":[1]}"#, 422, "invalid_argument", field: "payload"),
            .post(errors, #"{"source":"s","message":"m","order_id":{}}"#, 422, "invalid_argument", field: "order_id"),
            .post(errors, #"{"source":"s","message":""}"#, 422, "invalid_argument", field: "message"),
            .post(errors, "{source}", 400, "invalid_json"),
        ]
        let followups = "/api/delivery/o-1/followups"
        cases += [
            .post(followups, "{}", 422, "invalid_argument", field: "type"),
            .post(followups, #"{"type":"t","note":"n","impact":"huge"}"#, 422, "invalid_argument", field: "impact"),
            .post(followups, #"{"type":"t","note":"n"}"#, 422, "invalid_argument", field: "impact"),
            .post(followups, #"{"type":5,"note":"n","impact":"low"}"#, 422, "invalid_argument", field: "type"),
            .post(followups, #"{"type":"t","note":[],"impact":"low"}"#, 422, "invalid_argument", field: "note"),
            .post(followups, "{,}", 400, "invalid_json"),
        ]
        // Query parameters: cursors, timestamps, limits, enums.
        cases += [
            .get("/api/tasks?limit=abc", 422, "invalid_argument", field: "limit"),
            .get("/api/tasks?limit=0", 422, "invalid_argument", field: "limit"),
            .get("/api/tasks?limit=100000", 422, "invalid_argument", field: "limit"),
            .get("/api/tasks?status=weird", 422, "invalid_argument", field: "status"),
            .get("/api/tasks?cursor=abc", 422, "invalid_argument", field: "cursor"),
            .get("/api/tasks?cursor=-5", 422, "invalid_argument", field: "cursor"),
            .get("/api/tasks/x?as_of=yesterday", 422, "invalid_argument", field: "as_of"),
            .get("/api/tasks/x?as_of=2026-11-01T25:00:00Z", 422, "invalid_argument", field: "as_of"),
            .get("/api/traces?cursor=garbage", 422, "invalid_argument", field: "cursor"),
            .get("/api/traces?cursor=12~", 422, "invalid_argument", field: "cursor"),
            .get("/api/traces?since=notatime", 422, "invalid_argument", field: "since"),
            .get("/api/traces?until=2026-99-99", 422, "invalid_argument", field: "until"),
            .get("/api/traces?limit=-1", 422, "invalid_argument", field: "limit"),
            .get("/api/traces?min_duration_ms=abc", 422, "invalid_argument", field: "min_duration_ms"),
            .get("/api/traces?min_duration_ms=-5", 422, "invalid_argument", field: "min_duration_ms"),
            .get("/api/traces?min_duration_ms=1.7976931348623157e308", 422, "invalid_argument", field: "min_duration_ms"),
            .get("/api/traces?error=maybe", 422, "invalid_argument", field: "error"),
            .get("/api/traces/active?limit=0", 422, "invalid_argument", field: "limit"),
            .get("/api/traces/abc?format=xml", 422, "invalid_argument", field: "format"),
            .get("/api/replays?limit=x", 422, "invalid_argument", field: "limit"),
            .get("/api/delivery/o-1/followups?as_of=soon", 422, "invalid_argument", field: "as_of"),
            .get(
                "/api/traces/live?since_seq=-1",
                422,
                "invalid_argument",
                field: "since_seq",
                headers: [
                    "upgrade": "websocket", "connection": "Upgrade", "sec-websocket-version": "13", "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
                ]
            ),
            .get("/api/traces/live", 426, "upgrade_required"),
        ]
        // Every JSON route: bodies that are not JSON, and media types that are not JSON.
        let jsonRoutes = [logs, tasks, update, errors, followups]
        for route in jsonRoutes {
            for body in [
                "{", "]", "{\"a\":}", "{\"a\" 1}", "nul", "tru", "{\"a\":1,}", "[1,]", "'x'", "{\"a\":\"\\q\"}", "{\"a\":01}", "{\"a\":1.}",
                "{\"a\":-}", "{\"a\":\"\\u12g4\"}",
            ] {
                cases.append(.post(route, body, 400, "invalid_json"))
            }
            for type in ["text/html", "application/octet-stream", "image/png", "application/protobuf"] {
                cases.append(.post(route, "{}", 415, "unsupported_media_type", contentType: type))
            }
            cases.append(.post(route, bytes: Array("{\"a\":\"".utf8) + [0xF0, 0x28, 0x8C, 0x28] + Array("\"}".utf8), 400, "invalid_json"))
            cases.append(.post(route, bytes: Array("{\"a\":\"".utf8) + [0x01] + Array("\"}".utf8), 400, "invalid_json"))
            cases.append(.post(route, #"{"a": \#(nested(70))}"#, 400, "invalid_json"))
        }
        // Methods and routes.
        cases += [
            .method(.put, "/api/logs"), .method(.get, "/api/logs"), .method(.delete, "/api/tasks"), .method(.patch, "/api/tasks/updateStatus"),
            .method(.post, "/healthz"), .method(.post, "/metrics"), .method(.delete, "/api/traces/x"), .method(.post, "/api/traces/live"),
            .method(.put, "/api/delivery/o/finalize"), .method(.post, "/api/admin/stats"), .method(.delete, "/api/delivery/o/followups"),
            .get("/api/unknown", 404, "not_found"), .get("/api/logs/extra", 404, "not_found"), .get("/../etc/passwd", 404, "not_found"),
            .get("/api/tasks/a/b/c", 404, "not_found"), .get("/%2e%2e/%2e%2e/etc/passwd", 404, "not_found"),
        ]
        return cases
    }()

    @Test func thereAreAtLeastTwoHundredCases() {
        #expect(Self.cases.count >= 200)
    }

    @Test func everyBadRequestGetsItsErrorAndAppendsNothing() async throws {
        var limits = ServerLimits()
        limits.maximumBodyBytes = 256 << 10
        try await ServerFixture.run(.router, limits: limits) { runtime, client in
            for bad in Self.cases {
                let before = await runtime.log.lastSeq
                var headers: HTTPFields = [:]
                if let type = bad.contentType { headers[.contentType] = type }
                for (name, value) in bad.headers { headers[HTTPField.Name(name)!] = value }
                let response = try await client.execute(
                    uri: bad.path,
                    method: bad.method,
                    headers: headers,
                    body: bad.body.map { ByteBuffer(bytes: $0) }
                ) {
                    Envelope($0)
                }
                #expect(Int(response.status.code) == bad.status, "\(bad): status \(response.status.code), \(response.json)")
                #expect(response.errorCode == bad.code, "\(bad): code \(response.errorCode ?? "none")")
                if let field = bad.field { #expect(response.errorField == field, "\(bad): field \(response.errorField ?? "none")") }
                #expect(response.json["ok"] as? Bool == false, "\(bad): not the error envelope")
                #expect(response.headers[HTTPField.Name("x-trace-id")!] != nil, "\(bad): no x-trace-id")
                let after = await runtime.log.lastSeq
                #expect(after == before, "\(bad) appended \(after - before) events")
            }
            // Rejections are counted instead.
            let metrics = try await client.execute(uri: "/metrics", method: .get) { String(buffer: $0.body) }
            #expect(metrics.contains("custody_http_rejected_total{code=\"invalid_argument\"}"))
        }
    }
}
