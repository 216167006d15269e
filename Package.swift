// swift-tools-version: 6.2

import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "xi-gateway",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "xi-gateway", targets: ["XIGateway"]),
        .executable(name: "xi-fake-upstream", targets: ["XIFakeUpstream"]),
        .executable(name: "xi-redis-bench", targets: ["XIRedisBench"]),
        .library(name: "GatewayCore", targets: ["GatewayCore"]),
        .library(name: "GatewayCurl", targets: ["GatewayCurl"]),
        .library(name: "GatewayServer", targets: ["GatewayServer"]),
        .library(name: "GatewayShared", targets: ["GatewayShared"]),
        .library(name: "GatewayTesting", targets: ["GatewayTesting"]),
    ],
    dependencies: [
        // The listener and ByteBuffer/HTTPHeaders everywhere.
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        // Structured logging, the interface every server library in the ecosystem speaks.
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        // proxy.conf plus environment overrides, with secrets redacted.
        .package(url: "https://github.com/apple/swift-configuration", from: "1.4.0"),
        // FilePath, which swift-configuration's file provider takes (already in its dependency graph).
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
        // SHA-256 for token and key digests (BoringSSL's; on every request when teams are set up): about 5 times
        // faster per token than the hand-written one it replaced (Benchmarks/, "Token SHA-256").
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
        // Deque, for the governor's queue of waiters: taking the oldest costs the same at any length, where an
        // Array's removeFirst moved every waiter behind it (already in the graph: swift-nio builds on it).
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
        // TLS on the listeners (TLS_CERT_FILE): BoringSSL under a NIO channel handler, so a TLS connection runs
        // the same pipeline as a plain one, on its event loop.
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        // Metrics: made on its registry, each with a help text (the swift-metrics API has none), and rendered
        // for GET /metrics.
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        // Signals, graceful shutdown and reload, in the order every Swift server uses.
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        // The command line: subcommands, --help for each, --version, usage errors with exit status 64 (the
        // executable only; nothing on the request path).
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        // zlib (`zlib1g-dev`): pages kept gzipped, upstream gzip answers unpacked within a bound.
        .systemLibrary(
            name: "CZlib",
            pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"])]
        ),
        .target(
            name: "GatewayCore",
            dependencies: [
                "CZlib",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        .systemLibrary(
            name: "CCurl",
            pkgConfig: "libcurl",
            providers: [.apt(["libcurl4-openssl-dev"])]
        ),
        .target(
            name: "CCurlShim",
            dependencies: ["CCurl"]
        ),
        .target(
            name: "GatewayCurl",
            dependencies: [
                "GatewayCore",
                "CCurlShim",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // Found in the default include and library paths, not with pkg-config: Debian's hiredis.pc adds
        // -D_FILE_OFFSET_BITS=64, which SwiftPM refuses with a warning on every build (a no-op on 64-bit).
        .systemLibrary(
            name: "CHiredis",
            providers: [.apt(["libhiredis-dev"])]
        ),
        .target(
            name: "CHiredisShim",
            dependencies: ["CHiredis"]
        ),
        .target(
            name: "GatewayShared",
            dependencies: [
                "GatewayCore",
                "CHiredis",
                "CHiredisShim",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "GatewayServer",
            dependencies: [
                "GatewayCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "GatewayTesting",
            dependencies: [
                "GatewayCore",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "XIGateway",
            dependencies: [
                "GatewayCore",
                "GatewayCurl",
                "GatewayServer",
                "GatewayShared",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "XIRedisBench",
            dependencies: [
                "GatewayCore",
                "GatewayShared",
                "GatewayTesting",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "XIFakeUpstream",
            dependencies: [
                "GatewayCore",
                "GatewayTesting",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "GatewayCoreTests",
            dependencies: [
                "GatewayCore",
                "GatewayTesting",
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ],
            // pydantic's verdicts, read by the tests from the source tree (scripts/pydantic-oracle.py).
            exclude: ["Fixtures"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "GatewayCurlTests",
            dependencies: [
                "GatewayCurl",
                "GatewayTesting",
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "GatewayServerTests",
            dependencies: [
                "GatewayServer",
                "GatewayTesting",
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "GatewaySharedTests",
            dependencies: [
                "GatewayShared",
                "GatewayTesting",
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "GatewayTestingTests",
            dependencies: ["GatewayTesting"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "IntegrationTests",
            dependencies: [
                .product(name: "Prometheus", package: "swift-prometheus"),
                // A TLS client that keeps its connection open across a certificate rotation.
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                "GatewayServer",
                "GatewayCurl",
                "GatewayTesting",
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
