import GatewayCore
import GatewayCurl
import GatewayServer
import GatewayTesting
import Logging
import NIOCore
import NIOPosix

/// The real thing on loopback: a fake upstream, the libcurl client, the cache and the NIO listener.
struct GatewayHarness {
    static let apiKey = "sk_integration_0123456789abcdef"

    let upstream: FakeUpstream
    let client: CurlUpstreamClient
    let cache: ResponseCache
    let governor: UpstreamGovernor
    let server: GatewayServer

    var port: Int { server.localPort }

    static func start(
        timeoutMilliseconds: Int = 5000,
        idleTimeout: TimeAmount = .seconds(60),
        maxConnections: Int = 4096,
        requestHeadTimeout: TimeAmount = .seconds(10),
        maxResponseBytes: Int = 8 * 1024 * 1024,
        compression: Bool = true,
        ttlSeconds: Int = 30,
        staleSeconds: Int = 300,
        clock: any CacheClock = SystemCacheClock(),
        teams: TeamRegistry? = nil,
        accessLogger: Logger? = nil,
        metrics: GatewayMetrics? = nil,
        tls: ListenerTLS? = nil,
        governor: UpstreamGovernor.Configuration = .init(
            maxConcurrency: 4,
            maxQueue: 1024,
            queueTimeout: .seconds(5),
            backoffMaxSeconds: 30
        ),
        script: @escaping @Sendable (FakeUpstream.ReceivedRequest) -> FakeUpstream.Reply = { .page(for: $0.uri) }
    ) async throws -> GatewayHarness {
        let upstream = try await FakeUpstream.start(script: script)
        let client = try CurlUpstreamClient(
            configuration: CurlClientConfiguration(
                baseURL: UpstreamURL(upstream.baseURL),
                timeoutMilliseconds: timeoutMilliseconds,
                connectTimeoutMilliseconds: 2000,
                maxResponseBytes: maxResponseBytes
            ),
            logger: Logger(label: "integration")
        )
        let cache = ResponseCache(maxBytes: 1 << 24, ttlSeconds: ttlSeconds, staleSeconds: staleSeconds, clock: clock)
        let governor = UpstreamGovernor(configuration: governor, clock: clock)
        let service = ListService(
            cache: cache,
            upstream: client,
            governor: governor,
            apiKey: Secret(apiKey),
            waitLimit: .milliseconds(Int64(timeoutMilliseconds)),
            logger: Logger(label: "integration"),
            compression: compression,
            maxBodyBytes: maxResponseBytes
        )
        let context = ServerContext(
            service: service,
            cache: cache,
            governor: governor,
            settings: .init(accessLog: accessLogger != nil, adminToken: nil, teams: teams),
            accessLogger: accessLogger ?? Logger(label: "integration"),
            metrics: metrics
        )
        let server = try await GatewayServer.start(
            configuration: GatewayServer.Configuration(
                host: "127.0.0.1",
                port: 0,
                idleTimeout: idleTimeout,
                maxConnections: maxConnections,
                requestHeadTimeout: requestHeadTimeout,
                tls: tls
            ),
            context: context,
            group: MultiThreadedEventLoopGroup.singleton
        )
        context.setReady(true)
        return GatewayHarness(upstream: upstream, client: client, cache: cache, governor: governor, server: server)
    }

    func get(_ target: String, method: String = "GET", headers: [(String, String)] = []) throws -> TestResponse {
        try TestHTTPConnection.request(port: port, method: method, target: target, headers: headers)
    }

    func stop() async throws {
        try await server.close()
        client.shutdown()
        try await upstream.shutdown()
    }
}
