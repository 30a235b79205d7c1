import CustodyCore
import NIOCore

/// libFuzzer entry: any bytes as an encoded event. Decoding must answer (an event or an
/// EventCodecError) — never trap — and a decoded event must encode back to the same bytes.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let bytes = ByteBuffer(bytes: UnsafeRawBufferPointer(start: start, count: count))
    guard let body = try? EventCodec.decode(bytes) else { return 0 }
    let again = EventCodec.encode(body)
    precondition(again == bytes, "a decoded event encodes differently")
    return 0
}

/// SwiftPM links an executable's entry point as `EventCodecFuzz_main`; it hands over to libFuzzer's driver
/// with the function above.
@_silgen_name("LLVMFuzzerRunDriver")
func runFuzzerDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafeRawPointer?, Int) -> CInt
) -> CInt

@_cdecl("EventCodecFuzz_main")
public func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var count = argc
    var arguments = argv
    return runFuzzerDriver(&count, &arguments) { start, count in
        guard let start else { return 0 }
        return fuzz(start, count)
    }
}
