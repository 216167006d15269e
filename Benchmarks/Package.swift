// swift-tools-version: 6.2

import PackageDescription

// Microbenchmarks of the gateway's hot paths, kept in a package of their own so that the gateway's build and
// tests never resolve or build the benchmark harness. Run with `swift package benchmark` from this folder.
let package = Package(
    name: "xi-gateway-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        // The gateway itself.
        .package(name: "xi-gateway", path: ".."),
        // ByteBuffer for the cache's pages, EmbeddedChannel for a connection without a socket (the gateway
        // already depends on both).
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        // The harness. Its MallocInterposer trait counts allocations without jemalloc.
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
        // The logger the service and the connection handler are given.
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        .executableTarget(
            name: "GatewayBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "GatewayCore", package: "xi-gateway"),
                .product(name: "GatewayServer", package: "xi-gateway"),
                .product(name: "GatewayTesting", package: "xi-gateway"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Benchmarks/GatewayBenchmarks",
            swiftSettings: [
                .enableUpcomingFeature("MemberImportVisibility"),
                .enableUpcomingFeature("ExistentialAny"),
            ],
            plugins: [
                .plugin(name: "BenchmarkPlugin", package: "benchmark")
            ]
        )
    ]
)
