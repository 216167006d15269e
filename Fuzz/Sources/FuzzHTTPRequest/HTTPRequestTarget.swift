import GatewayCore
import GatewayServer
import GatewayTesting
import Logging
import NIOCore
import NIOEmbedded

/// libFuzzer's entry point: any bytes as what a client sends on one connection, through the gateway's
/// whole per-connection pipeline (HTTP decoding, routing, validation, the cache, a scripted upstream).
/// Nothing may crash, whatever arrives.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzHTTPRequest(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let channel = EmbeddedChannel()
    let cache = ResponseCache(maxBytes: 1 << 20, ttlSeconds: 30, staleSeconds: 30)
    let governor = UpstreamGovernor(
        configuration: .init(maxConcurrency: 2, maxQueue: 4, queueTimeout: .seconds(1), backoffMaxSeconds: 2)
    )
    let upstream = ScriptedUpstreamClient { request in
        .success(
            UpstreamResponse(
                status: 200,
                headers: [:],
                body: ByteBuffer(string: FakeUpstream.page(for: request.target))
            )
        )
    }
    let service = ListService(
        cache: cache,
        upstream: upstream,
        governor: governor,
        apiKey: Secret("fuzz-key"),
        waitLimit: .seconds(1),
        logger: Logger(label: "fuzz")
    )
    let context = ServerContext(
        service: service,
        cache: cache,
        governor: governor,
        settings: .init(accessLog: false, adminToken: Secret("fuzz-admin-token-0123456789")),
        accessLogger: Logger(label: "fuzz"),
        passthrough: PassthroughService(
            upstream: upstream,
            governor: governor,
            cache: cache,
            budgets: TeamBudgets(),
            key: service.upstreamKey,
            logger: Logger(label: "fuzz")
        )
    )
    do {
        try GatewayServer.configurePipeline(
            channel.pipeline.syncOperations,
            configuration: .init(host: "127.0.0.1", port: 0),
            context: context
        )
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
    } catch {
        fatalError("set-up failed: \(error)")
    }
    _ = try? channel.writeInbound(ByteBuffer(bytes: UnsafeBufferPointer(start: data, count: size)))
    channel.embeddedEventLoop.run()
    while (try? channel.readOutbound(as: ByteBuffer.self)) != nil {}
    _ = try? channel.finish(acceptAlreadyClosed: true)
    return 0
}
