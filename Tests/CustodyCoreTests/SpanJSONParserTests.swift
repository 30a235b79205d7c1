import CustodyCore
import CustodyLog
import CustodyLogTesting
import Foundation
import NIOCore
import Testing

/// The streaming span parser against Foundation's JSON: the same spans from valid bodies, and a
/// rejection (never a crash) for every body Foundation finds not to be JSON.
@Suite struct SpanJSONParserTests {
    func parse(_ text: String) throws(CoreError) -> LogOperations.Entries {
        try SpanJSONParser.parseLogBody(ByteBuffer(string: text))
    }

    @Test func theThreeShapesOfABody() throws {
        guard case .one(let one) = try parse(#"{"source":"a","duration_ms":1.5,"details":{"k":[1,{"x":null}]}}"#) else {
            Issue.record("one entry expected")
            return
        }
        #expect(one.source == "a" && one.durationMs == 1.5)
        #expect(one.detailsText?.description == #"{"k":[1,{"x":null}]}"#)
        guard case .many(let list) = try parse(#" [ {"stage":"x"} , {"stage":"y"} ] "#) else {
            Issue.record("a list expected")
            return
        }
        #expect(list.map(\.stage) == ["x", "y"])
        guard case .many(let wrapped) = try parse(#"{"entries":[{"operation":"o"}],"other":1}"#) else {
            Issue.record("a list expected")
            return
        }
        #expect(wrapped.map(\.operation) == ["o"])
    }

    @Test func escapesUnicodeAndNulls() throws {
        guard case .one(let span) = try parse(#"{"source":"a\"b\\c\/d\u00e9\ud83d\ude00\n","stage":null,"s\u006furce":"z","trace_id":"é"}"#) else {
            Issue.record("one entry expected")
            return
        }
        // A key spelled with escapes is the same key; the later one wins.
        #expect(span.source == "z")
        #expect(span.stage == nil)
        #expect(span.traceId == "é")
        guard case .one(let escaped) = try parse(#"{"source":"a\"b\\c\/d\u00e9\ud83d\ude00\n"}"#) else { return }
        #expect(escaped.source == "a\"b\\c/dé😀\n")
    }

    @Test func typeErrorsNameTheFieldAndSyntaxWinsOverThem() {
        func code(_ text: String) -> (String, String?) {
            do {
                _ = try parse(text)
                return ("ok", nil)
            } catch {
                return (error.code.description, error.field)
            }
        }
        #expect(code(#"{"source":5}"#) == ("invalid_argument", "source"))
        #expect(code(#"[{"source":"a"},{"duration_ms":"x"}]"#) == ("invalid_argument", "entries[1].duration_ms"))
        #expect(code(#"{"entries":[{},3]}"#) == ("invalid_argument", "entries[1]"))
        #expect(code(#"[{"source":5},"#) == ("invalid_json", nil))
        #expect(code(#"{"source":5} x"#) == ("invalid_json", nil))
        #expect(code(#"{"details":[1]}"#) == ("invalid_argument", "details"))
        #expect(code(String(repeating: "[", count: 65) + String(repeating: "]", count: 65)) == ("invalid_json", nil))
        #expect(code(#"{"a":1e}"#) == ("invalid_json", nil))
        #expect(code(#"{"a":01}"#) == ("invalid_json", nil))
        #expect(code(#"{"a":"\x"}"#) == ("invalid_json", nil))
        #expect(code(#"{"a":"\u12"}"#) == ("invalid_json", nil))
    }

    /// Random valid bodies: the parser's spans equal JSONDecoder's.
    @Test func randomBodiesParseAsFoundationDecodesThem() throws {
        var random = SplitMix64(seed: 7)
        for round in 0..<1500 {
            let body = Self.randomBody(&random)
            let parsed: LogOperations.Entries
            do {
                parsed = try parse(body)
            } catch {
                Issue.record("round \(round): rejected \(body): \(error)")
                continue
            }
            let data = Data(body.utf8)
            let expected: [SpanInput]
            if body.hasPrefix("[") {
                expected = try JSONDecoder().decode([SpanInput].self, from: data)
            } else {
                expected = [try JSONDecoder().decode(SpanInput.self, from: data)]
            }
            let got: [SpanInput]
            switch parsed {
            case .one(let span): got = [span]
            case .many(let spans): got = spans
            }
            #expect(got.count == expected.count)
            for (a, b) in zip(got, expected) {
                #expect(a.traceId == b.traceId && a.source == b.source && a.stage == b.stage && a.operation == b.operation, "round \(round)")
                #expect(a.spanId == b.spanId && a.parentSpanId == b.parentSpanId && a.taskUUID == b.taskUUID && a.timestamp == b.timestamp)
                #expect(a.durationMs == b.durationMs, "round \(round): \(String(describing: a.durationMs)) vs \(String(describing: b.durationMs))")
                #expect(a.detailsText?.jsonValue == b.details, "round \(round)")
            }
        }
    }

    /// Mutated bodies (cut, bytes flipped, inserted): never a crash; whatever Foundation cannot
    /// parse as JSON the parser refuses as invalid_json.
    @Test func mutatedBodiesAreRefusedLikeFoundationRefusesThem() {
        var random = SplitMix64(seed: 11)
        var refused = 0
        for _ in 0..<6000 {
            var bytes = Array(Self.randomBody(&random).utf8)
            switch random.next() % 4 {
            case 0: bytes = Array(bytes.prefix(Int(random.next() % UInt64(bytes.count))))
            case 1:
                let at = Int(random.next() % UInt64(bytes.count))
                bytes[at] = UInt8(truncatingIfNeeded: random.next())
            case 2:
                let at = Int(random.next() % UInt64(bytes.count))
                bytes.insert(
                    [UInt8(ascii: "\""), UInt8(ascii: "{"), UInt8(ascii: "]"), 0xC3, 0x00, UInt8(ascii: "\\")][Int(random.next() % 6)],
                    at: at
                )
            default:
                let at = Int(random.next() % UInt64(bytes.count))
                bytes.remove(at: at)
            }
            let foundationAccepts = (try? JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed])) != nil
            do {
                _ = try SpanJSONParser.parseLogBody(ByteBuffer(bytes: bytes))
                #expect(foundationAccepts, "accepted what Foundation refuses: \(String(decoding: bytes, as: UTF8.self))")
            } catch {
                refused += 1
                if !foundationAccepts {
                    #expect(error.code == .invalidJSON, "\(error) for \(String(decoding: bytes, as: UTF8.self))")
                }
            }
        }
        #expect(refused > 1000)
    }

    static func randomBody(_ random: inout SplitMix64) -> String {
        func pick<T>(_ options: [T]) -> T { options[Int(random.next() % UInt64(options.count))] }
        func text() -> String {
            let pieces = ["a", "agent-factory", "é", "😀", "\\n", "\\\"", "\\\\", "\\/", "\\u00e9", "\\ud83d\\ude00", " ", "x-1", "\\t", "中"]
            return (0..<Int(1 + random.next() % 4)).map { _ in pick(pieces) }.joined()
        }
        func value(_ depth: Int) -> String {
            switch random.next() % (depth > 3 ? 5 : 7) {
            case 0: return "\"\(text())\""
            case 1: return pick(["0", "-1", "3.25", "1e3", "-0.5E-2", "12345678901234"])
            case 2: return pick(["true", "false", "null"])
            case 3: return "\"\(text())\""
            case 4: return "null"
            case 5: return "[" + (0..<Int(random.next() % 3)).map { _ in value(depth + 1) }.joined(separator: ",") + "]"
            default:
                return "{" + (0..<Int(random.next() % 3)).map { i in "\"k\(i)\(text())\":\(value(depth + 1))" }.joined(separator: ",") + "}"
            }
        }
        func span() -> String {
            var fields: [String] = []
            for key in ["trace_id", "span_id", "parent_span_id", "source", "stage", "operation", "task_uuid", "timestamp"]
            where random.next() % 2 == 0 {
                fields.append("\"\(key)\": " + (random.next() % 5 == 0 ? "null" : "\"\(text())\""))
            }
            if random.next() % 2 == 0 { fields.append("\"duration_ms\": " + pick(["0", "12.5", "1e2", "null", "0.000001", "123456789.125"])) }
            if random.next() % 2 == 0 {
                fields.append("\"details\": " + (random.next() % 6 == 0 ? "null" : "{\"ok\": \(value(1)), \"n\": \(value(1))}"))
            }
            if random.next() % 4 == 0 { fields.append("\"unknown\": \(value(1))") }
            return "{" + fields.joined(separator: pick([",", " , ", ",\n"])) + "}"
        }
        if random.next() % 2 == 0 { return span() }
        return "[" + (0..<Int(1 + random.next() % 4)).map { _ in span() }.joined(separator: ",") + "]"
    }
}
