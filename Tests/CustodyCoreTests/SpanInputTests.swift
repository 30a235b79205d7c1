import CustodyCore
import CustodyLog
import CustodyLogTesting
import Foundation
import NIOCore
import Testing

@Suite struct SpanInputTests {
    static let now: Int64 = 1_764_000_000_000_000_000

    static func validate(_ json: String) throws -> Span {
        let input = try JSONDecoder().decode(SpanInput.self, from: Data(json.utf8))
        return try input.validated(now: now) { "generated-trace" }
    }

    static func expectError(
        _ json: String,
        code: CoreError.Code = .invalidArgument,
        field: String?,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        do {
            _ = try validate(json)
            Issue.record("\(json) was accepted", sourceLocation: sourceLocation)
        } catch let error as CoreError {
            #expect(error.code == code, sourceLocation: sourceLocation)
            #expect(error.field == field, "\(error)", sourceLocation: sourceLocation)
            if let field { #expect(error.message.contains(field), sourceLocation: sourceLocation) }
        } catch {
            Issue.record("\(json) threw \(error), not a CoreError", sourceLocation: sourceLocation)
        }
    }

    @Test func defaultsAreApplied() throws {
        let span = try Self.validate("{}")
        #expect(span.traceId == "generated-trace")
        #expect(span.source == "unknown" && span.stage == "processing" && span.operation == "unknown")
        #expect(span.timestamp == Self.now)
        #expect(span.spanId == nil && span.details == nil && span.durationMs == nil)
        // null is the same as absent.
        #expect(try Self.validate(#"{"source": null, "details": null}"#).source == "unknown")
    }

    @Test func aFullSpanIsKept() throws {
        let span = try Self.validate(
            #"{"trace_id":"abcd-1234","span_id":"b7ad6b7169203331","parent_span_id":null,"source":"agent-factory","stage":"before_rpc","operation":"createAgent","task_uuid":"t-1","duration_ms":12.5,"timestamp":"2026-11-03T21:00:00.123Z","details":{"ok":true,"n":3}}"#
        )
        #expect(span.traceId == "abcd-1234" && span.spanId == "b7ad6b7169203331" && span.parentSpanId == nil)
        #expect(span.source == "agent-factory" && span.stage == "before_rpc" && span.operation == "createAgent")
        #expect(span.taskUUID == "t-1" && span.durationMs == 12.5)
        #expect(span.timestamp == RFC3339.nanoseconds("2026-11-03T21:00:00.123Z"))
        #expect(span.details?.description == #"{"n":3,"ok":true}"#)
    }

    @Test func everyBadFieldIsNamed() {
        Self.expectError(#"{"trace_id": 5}"#, field: "trace_id")
        Self.expectError(#"{"trace_id": "has space"}"#, field: "trace_id")
        Self.expectError(#"{"trace_id": ""}"#, field: "trace_id")
        Self.expectError("{\"trace_id\": \"\(String(repeating: "a", count: 129))\"}", field: "trace_id")
        Self.expectError(#"{"source": ""}"#, field: "source")
        Self.expectError("{\"source\": \"\(String(repeating: "s", count: 65))\"}", field: "source")
        Self.expectError("{\"operation\": \"\(String(repeating: "o", count: 257))\"}", field: "operation")
        Self.expectError(#"{"stage": ["x"]}"#, field: "stage")
        Self.expectError(#"{"stage": "a\u0000b"}"#, field: "stage")
        Self.expectError(#"{"duration_ms": -1}"#, field: "duration_ms")
        Self.expectError(#"{"duration_ms": "12"}"#, field: "duration_ms")
        Self.expectError(#"{"timestamp": "yesterday"}"#, field: "timestamp")
        Self.expectError(#"{"timestamp": 1700000000}"#, field: "timestamp")
        Self.expectError(#"{"details": [1, 2]}"#, field: "details")
        Self.expectError(#"{"details": "text"}"#, field: "details")
        Self.expectError(#"{"task_uuid": 7}"#, field: "task_uuid")
        Self.expectError(#"[1, 2]"#, field: nil)
        let big = String(repeating: "x", count: 70_000)
        Self.expectError("{\"details\": {\"blob\": \"\(big)\"}}", code: .payloadTooLarge, field: "details")
    }

    @Test func limitsAreInclusive() throws {
        #expect(try Self.validate("{\"source\": \"\(String(repeating: "s", count: 64))\"}").source.count == 64)
        #expect(try Self.validate("{\"trace_id\": \"\(String(repeating: "a", count: 128))\"}").traceId.count == 128)
        #expect(try Self.validate(#"{"duration_ms": 0}"#).durationMs == 0)
        #expect(try Self.validate(#"{"trace_id": "A.b_c:d-9"}"#).traceId == "A.b_c:d-9")
    }
}

@Suite struct RFC3339Tests {
    @Test func parsesWhatTheSpecShows() {
        #expect(RFC3339.nanoseconds("1970-01-01T00:00:00Z") == 0)
        #expect(RFC3339.nanoseconds("2026-11-03T21:00:00.123Z") == 1_793_739_600_123_000_000)
        #expect(RFC3339.nanoseconds("2026-11-03T23:00:00.123+02:00") == 1_793_739_600_123_000_000)
        #expect(RFC3339.nanoseconds("2026-11-03T16:30:00.123-04:30") == 1_793_739_600_123_000_000)
        #expect(RFC3339.nanoseconds("2026-11-03T21:00:00.123456789Z") == 1_793_739_600_123_456_789)
        // More than 9 fractional digits: the rest is dropped, never a crash.
        #expect(RFC3339.nanoseconds("2026-11-03T21:00:00.1234567891234Z") == 1_793_739_600_123_456_789)
        #expect(RFC3339.nanoseconds("2024-02-29T00:00:00Z") != nil)
        #expect(RFC3339.nanoseconds("1969-12-31T23:59:59Z") == -1_000_000_000)
    }

    @Test func rejectsEverythingElse() {
        for bad in [
            "", "2026-11-03", "2026-11-03T21:00:00", "2026-13-03T21:00:00Z", "2026-02-30T00:00:00Z", "2023-02-29T00:00:00Z",
            "2026-11-03T24:00:00Z", "2026-11-03T21:00:00.Z", "2026-11-03T21:00:00+0200", "2026-11-03T21:00:00Zjunk", "yesterday",
            "99999-11-03T21:00:00Z", "2026-11-03T21:60:00Z",
        ] {
            #expect(RFC3339.nanoseconds(bad) == nil, "\(bad)")
        }
    }

    @Test func formatsMillisecondsInUTC() {
        #expect(RFC3339.format(0) == "1970-01-01T00:00:00.000Z")
        #expect(RFC3339.format(1_793_739_600_123_456_789) == "2026-11-03T21:00:00.123Z")
        #expect(RFC3339.format(-1) == "1969-12-31T23:59:59.999Z")
        var random = SplitMix64(seed: 6)
        for _ in 0..<1000 {
            let milliseconds = Int64(random.next(upperBound: 8_000_000_000_000)) - 1_000_000_000_000
            #expect(RFC3339.nanoseconds(RFC3339.format(milliseconds * 1_000_000)) == milliseconds * 1_000_000)
        }
    }
}
