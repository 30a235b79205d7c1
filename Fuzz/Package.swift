// swift-tools-version:6.1
// libFuzzer harnesses for Custody's decoders (docs/benchmarks.md R6). Built apart from the main package,
// with the fuzzer sanitizer: `make fuzz` (see scripts/fuzz.sh).
import Foundation
import PackageDescription

/// A path dependency's identity is its directory's name: the checkout's, whatever it is.
let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().lastPathComponent

let package = Package(
    name: "custody-fuzz",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(path: ".."),
        .package(url: "https://github.com/apple/swift-protobuf.git", from: "1.39.0"),
    ],
    targets: [
        // The streaming span parser of POST /api/logs, then validation of what it returns.
        .executableTarget(
            name: "SpanParserFuzz",
            dependencies: [.product(name: "CustodyCore", package: root)],
            swiftSettings: [.unsafeFlags(["-parse-as-library"])]
        ),
        // The OTLP protobuf decoder against SwiftProtobuf + the mapping (differential).
        .executableTarget(
            name: "OTLPDecoderFuzz",
            dependencies: [
                .product(name: "CustodyCore", package: root),
                .product(name: "CustodyOTLP", package: root),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            swiftSettings: [.unsafeFlags(["-parse-as-library"])]
        ),
        // The log's batch decoder (what recovery and readers trust), on arbitrary bytes.
        .executableTarget(
            name: "EventCodecFuzz",
            dependencies: [.product(name: "CustodyCore", package: root)],
            swiftSettings: [.unsafeFlags(["-parse-as-library"])]
        ),
    ]
)
