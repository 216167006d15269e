// swift-tools-version: 6.2

import PackageDescription

// Fuzz targets for libFuzzer, in a package of their own so that the gateway's build and tests never
// build them. Build and run with `make fuzz` (see the README).
let package = Package(
    name: "xi-gateway-fuzz",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "xi-gateway", path: ".."),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        .target(name: "CFuzzer"),
        .executableTarget(
            name: "FuzzListQuery",
            dependencies: ["CFuzzer", .product(name: "GatewayCore", package: "xi-gateway")]
        ),
        .executableTarget(
            name: "FuzzHTTPRequest",
            dependencies: [
                "CFuzzer",
                .product(name: "GatewayCore", package: "xi-gateway"),
                .product(name: "GatewayServer", package: "xi-gateway"),
                .product(name: "GatewayTesting", package: "xi-gateway"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "FuzzRequestDecoder",
            dependencies: [
                "CFuzzer",
                .product(name: "GatewayCore", package: "xi-gateway"),
                .product(name: "GatewayServer", package: "xi-gateway"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
    ]
)
