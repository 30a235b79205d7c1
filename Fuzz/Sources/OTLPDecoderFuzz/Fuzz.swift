import CustodyCore
import CustodyOTLP
import SwiftProtobuf

/// libFuzzer entry, differential: any bytes as an OTLP export request, decoded by
/// ``OTLPProtobufDecoder`` and by the reference (SwiftProtobuf, then ``OTLPSpanMapping``). Both
/// must answer without trapping, and the same: the same spans (`details` byte for byte) or both
/// a refusal. A difference traps, and libFuzzer keeps the input.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: start, count: count)
    let fast = try? OTLPProtobufDecoder.spans(from: bytes)
    let reference = (try? OTLPSpanMapping.Request(serializedBytes: Array(bytes))).map(OTLPSpanMapping.spans(of:))
    guard fast == reference else {
        fatalError("the decoders disagree: fast \(fast.map { "\($0.count) spans" } ?? "refused"), reference \(reference.map { "\($0.count) spans" } ?? "refused")")
    }
    for span in fast ?? [] {
        _ = try? span.validated(now: 1_800_000_000_000_000_000, newTraceId: { "t" })
    }
    return 0
}

/// SwiftPM links an executable's entry point as `OTLPDecoderFuzz_main`; it hands over to
/// libFuzzer's driver with the function above.
@_silgen_name("LLVMFuzzerRunDriver")
func runFuzzerDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafeRawPointer?, Int) -> CInt
) -> CInt

@_cdecl("OTLPDecoderFuzz_main")
public func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var count = argc
    var arguments = argv
    return runFuzzerDriver(&count, &arguments) { start, count in
        guard let start else { return 0 }
        return fuzz(start, count)
    }
}
