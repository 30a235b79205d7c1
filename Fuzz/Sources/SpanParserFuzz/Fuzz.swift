import CustodyCore
import NIOCore

/// libFuzzer entry: any bytes as a `recordLog` body. The parser must answer (spans or a
/// CoreError) and validation of every span must too — never trap.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let body = ByteBuffer(bytes: UnsafeRawBufferPointer(start: start, count: count))
    guard let entries = try? SpanJSONParser.parseLogBody(body) else { return 0 }
    let spans: [SpanInput]
    switch entries {
    case .one(let span): spans = [span]
    case .many(let list): spans = list
    }
    for span in spans {
        if let valid = try? span.validated(now: 1_800_000_000_000_000_000, newTraceId: { "t" }) {
            _ = EventCodec.encode(.span(valid))
            _ = valid.end
        }
    }
    return 0
}

/// SwiftPM links an executable's entry point as `SpanParserFuzz_main`; it hands over to libFuzzer's driver
/// with the function above.
@_silgen_name("LLVMFuzzerRunDriver")
func runFuzzerDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafeRawPointer?, Int) -> CInt
) -> CInt

@_cdecl("SpanParserFuzz_main")
public func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var count = argc
    var arguments = argv
    return runFuzzerDriver(&count, &arguments) { start, count in
        guard let start else { return 0 }
        return fuzz(start, count)
    }
}
