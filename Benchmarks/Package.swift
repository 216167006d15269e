// swift-tools-version: 6.2

import PackageDescription

// Microbenchmarks of GatewayCore's hot paths, kept in a package of their own so that the gateway's build and
// tests never resolve or build the benchmark harness. Run with `swift package benchmark` from this folder.
let package = Package(
    name: "xi-gateway-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        // The gateway itself.
        .package(name: "xi-gateway", path: ".."),
        // ByteBuffer, for the pages the cache benchmarks store (the gateway already depends on it).
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        // The harness. Its MallocInterposer trait counts allocations without jemalloc.
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "GatewayBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "GatewayCore", package: "xi-gateway"),
                .product(name: "NIOCore", package: "swift-nio"),
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
