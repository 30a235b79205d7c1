// swift-tools-version:6.1
// The swift-tools-version declares the minimum version of Swift required to build this package.

import PackageDescription

let swiftSettings: [SwiftSetting] = [
    // https://github.com/apple/swift-evolution/blob/main/proposals/0335-existential-any.md
    .enableUpcomingFeature("ExistentialAny"),
    // https://github.com/swiftlang/swift-evolution/blob/main/proposals/0444-member-import-visibility.md
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "custody",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "CustodyLog", targets: ["CustodyLog"]),
        // What tests and benchmarks of a log need: a fault-injecting file system, a clock moved by
        // hand, sample records, a seedable generator, and the EventLog conformance suite.
        .library(name: "CustodyLogTesting", targets: ["CustodyLogTesting"]),
        .library(name: "CustodyCore", targets: ["CustodyCore"]),
        .library(name: "CustodyServer", targets: ["CustodyServer"]),
        .library(name: "CustodyClient", targets: ["CustodyClient"]),
        // What tests of a server need: a server over a temporary data directory, the custody
        // executable as a child process, workers whose ports are handed over.
        .library(name: "CustodyServerTesting", targets: ["CustodyServerTesting"]),
        // OTLP's messages and decoders, a product of its own for the fuzz harnesses (Fuzz/).
        .library(name: "CustodyOTLP", targets: ["CustodyOTLP"]),
        .executable(name: "custody", targets: ["custody"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-system.git", from: "1.8.1"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.6.0"),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket.git", from: "2.8.1"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/swift-otel/swift-w3c-trace-context.git", from: "1.0.0"),
        .package(url: "https://github.com/apple/swift-protobuf.git", from: "1.39.0"),
        .package(url: "https://github.com/adam-fowler/compress-nio.git", from: "1.5.0"),
        .package(url: "https://github.com/grpc/grpc-swift-2.git", from: "2.4.3"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport.git", from: "2.9.2"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
    ],
    targets: [
        // liblz4 from the system (Debian: liblz4-dev).
        .systemLibrary(
            name: "CLZ4",
            pkgConfig: "liblz4",
            providers: [.apt(["liblz4-dev"])]
        ),
        // glibc's <malloc.h> (mallinfo2, for the memory figures of /api/admin/stats).
        .systemLibrary(name: "CMalloc"),
        // nats.c from the system (Debian: libnats-dev): the JetStream log of cluster mode.
        .systemLibrary(
            name: "CNATS",
            pkgConfig: "libnats",
            providers: [.apt(["libnats-dev"])]
        ),
        // Cluster mode's log: an EventLog on a NATS JetStream stream, through nats.c.
        .target(
            name: "CustodyJetStream",
            dependencies: [
                "CNATS",
                "CustodyLog",
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "CustodyJetStreamTests",
            dependencies: [
                "CustodyJetStream",
                "CustodyLog",
                "CustodyLogTesting",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // CRC32C with the SSE4.2 / ARMv8 CRC instructions and a portable fallback.
        .target(name: "CCRC32C"),
        .target(
            name: "CustodyLog",
            dependencies: [
                "CLZ4",
                "CCRC32C",
                // SHA-256 of the hash chain.
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "CustodyLogTesting",
            dependencies: [
                "CustodyLog",
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: swiftSettings
        ),
        // The SQL of the projections: files in schema/, shipped as resources and run as they are.
        .target(
            name: "CustodySchema",
            path: "schema",
            exclude: ["openapi.yaml", "otlp", "custody.proto"],
            resources: [.copy("projections"), .copy("projections-postgresql")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "CustodyCore",
            dependencies: [
                "CustodyLog",
                "CustodySchema",
                // Ed25519 of the signed checkpoints.
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
                // The projections on PostgreSQL (docs/projections.md).
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "NIOCore", package: "swift-nio"),
                // The blocking copies of a backup run on its thread pool.
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                // The signing key file's reads and writes.
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "CustodyCoreTests",
            dependencies: [
                "CustodyCore",
                "CustodyLogTesting",
                "CustodyServerTesting",
                "CustodySchema",
                "CustodyOTLP",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                "CustodyLog",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // The gRPC messages and service stubs of schema/custody.proto (generated once by
        // scripts/generate-rpc.sh and committed; no build plugin).
        .target(
            name: "CustodyRPC",
            dependencies: [
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            swiftSettings: swiftSettings
        ),
        // OTLP trace messages (generated once by scripts/generate-otlp.sh from schema/otlp and
        // committed) and their mapping to Custody spans.
        .target(
            name: "CustodyOTLP",
            dependencies: [
                "CustodyCore",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // The library a worker links: typed calls, trace propagation, a batching span exporter,
        // SimOps. It does not depend on the server's modules.
        .target(
            name: "CustodyClient",
            dependencies: [
                "CustodyRPC",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "W3CTraceContext", package: "swift-w3c-trace-context"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ],
            swiftSettings: swiftSettings
        ),
        // HTTP, WebSocket and metrics adapters over CustodyCore: decode, call the core, encode.
        .target(
            name: "CustodyServer",
            dependencies: [
                "CustodyRPC",
                "CMalloc",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                "CustodyCore",
                "CustodyOTLP",
                "CustodyLog",
                "CustodyClient",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "CompressNIO", package: "compress-nio"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "W3CTraceContext", package: "swift-w3c-trace-context"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            // Mission Control: HTML, CSS and JavaScript modules, served as they are.
            resources: [.copy("Dashboard/Assets")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "CustodyServerTesting",
            dependencies: [
                "CustodyServer",
                "CustodyLogTesting",
                "CustodyCore",
                "CustodyLog",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                // The reads that compare projection stores.
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "CustodyClientTests",
            dependencies: [
                "CustodyClient",
                "CustodyServerTesting",
                "CustodyServer",
                "CustodyCore",
                "CustodyLog",
                "CustodyLogTesting",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ],
            swiftSettings: swiftSettings
        ),
        // The `custody` command run as a person runs it: the executable as a child process.
        .testTarget(
            name: "CustodyCommandTests",
            dependencies: [
                "CustodyServerTesting",
                "CustodyClient",
                "CustodyCore",
                "CustodyLog",
                "CustodyLogTesting",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "CustodyOTLPTests",
            dependencies: [
                "CustodyOTLP",
                "CustodyCore",
                "CustodyLogTesting",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "CustodyServerTests",
            dependencies: [
                "CustodyServerTesting",
                "CustodyLogTesting",
                "CustodyRPC",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
                "CustodyServer",
                "CustodyClient",
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                "CustodyOTLP",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                "CustodyCore",
                "CustodyLog",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                .product(name: "HummingbirdWSTesting", package: "hummingbird-websocket"),
                .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "CompressNIO", package: "compress-nio"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "custody",
            dependencies: [
                "CustodyLog",
                // `custody bench` and `custody log bench` generate their records with SamplePayloads.
                "CustodyLogTesting",
                "CustodyCore",
                "CustodyServer",
                "CustodyClient",
                "CustodyOTLP",
                "CustodyRPC",
                "CustodyJetStream",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                // `custody bench compare` measures the seed design's one INSERT per event.
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "CustodyLogTests",
            dependencies: [
                "CustodyLog",
                "CustodyLogTesting",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "LogAppend",
            dependencies: [
                "CustodyLog",
                "CustodyLogTesting",
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "Benchmarks/LogAppend",
            swiftSettings: swiftSettings,
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        // docs/benchmarks.md P4: decoding an OTLP export of 512 spans, the fast decoder beside
        // SwiftProtobuf + the mapping (the reference), in one run.
        .executableTarget(
            name: "OTLPDecode",
            dependencies: [
                "CustodyLog",
                "CustodyCore",
                "CustodyOTLP",
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "Benchmarks/OTLPDecode",
            swiftSettings: swiftSettings,
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ]
)
