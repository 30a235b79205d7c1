import Benchmark
import CustodyCore
import CustodyLog
import CustodyOTLP
import NIOCore
import SwiftProtobuf

// OTLP decoding (docs/benchmarks.md P4): an export request of 512 spans, as the SDKs write them,
// decoded into Custody's span inputs — by the fast decoder straight from the bytes, and by the
// reference path OTLP/HTTP took before it (SwiftProtobuf's messages, then the mapping). Side by
// side in one run; each iteration decodes 64 different exports (32,768 spans).

/// The exports each iteration decodes.
let exports: [ByteBuffer] = {
    var random = SystemRandomNumberGenerator()
    return (0..<64).map { OTLPSamples.export(body: $0, batch: 512, random: &random) }
}()

let spansPerSecond = BenchmarkMetric.custom("spans/s", polarity: .prefersLarger, useScalingFactor: false)

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [spansPerSecond, .wallClock, .mallocCountTotal, .instructions],
        timeUnits: .milliseconds,
        maxDuration: .seconds(10),
        maxIterations: 50
    )

    Benchmark("OTLP decode: fast decoder, 512-span exports") { benchmark in
        let clock = ContinuousClock()
        let start = clock.now
        var spans = 0
        for export in exports {
            spans += try OTLPProtobufDecoder.spans(from: export).count
        }
        benchmark.measurement(spansPerSecond, Int(Double(spans) / (clock.now - start).inSeconds))
        blackHole(spans)
    }

    Benchmark("OTLP decode: SwiftProtobuf + mapping (reference), 512-span exports") { benchmark in
        let clock = ContinuousClock()
        let start = clock.now
        var spans = 0
        for export in exports {
            let request = try export.withUnsafeReadableBytes { try OTLPSpanMapping.Request(serializedBytes: $0) }
            spans += OTLPSpanMapping.spans(of: request).count
        }
        benchmark.measurement(spansPerSecond, Int(Double(spans) / (clock.now - start).inSeconds))
        blackHole(spans)
    }
}
