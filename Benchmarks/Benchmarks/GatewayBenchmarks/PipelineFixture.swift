import GatewayCore
import GatewayServer
import GatewayTesting
import Logging
import NIOCore
import NIOEmbedded
import NIOHTTP1

/// One connection's handlers (``RequestDecoder`` and the connection handler) on an `EmbeddedChannel`,
/// with a page in the cache: a request goes in as bytes and its answer comes out as bytes, with no
/// socket and no other thread, so what is measured is the gateway's own work on a hit (and NIO's
/// pipeline around it).
///
/// Not thread-safe: each benchmark owns one and uses it from its measuring thread only.
final class PipelineFixture {
    private let channel = EmbeddedChannel()
    private let request: ByteBuffer

    /// A fixture whose request, `GET` of the list path with `query`, hits a page of about 10 KiB, stored as
    /// the gateway stores it by default (gzip); `acceptEncoding`: the request's field, if any (without it, the
    /// identity form is the answer).
    init(query: String = "agent_id=agent_123&page_size=30", acceptEncoding: String? = nil) throws {
        let apiKey = Secret("benchmark-key")
        let cache = ResponseCache(maxBytes: 64 << 20, ttlSeconds: 3_600)
        let governor = UpstreamGovernor(
            configuration: .init(maxConcurrency: 4, maxQueue: 16, queueTimeout: .seconds(5), backoffMaxSeconds: 30)
        )
        let service = ListService(
            cache: cache,
            upstream: ScriptedUpstreamClient { _ in .failure(.connectFailed("the benchmark never misses")) },
            governor: governor,
            apiKey: apiKey,
            waitLimit: .seconds(5),
            logger: Logger(label: "benchmark")
        )
        let context = ServerContext(
            service: service,
            cache: cache,
            governor: governor,
            settings: .init(accessLog: false, adminToken: nil),
            accessLogger: Logger(label: "access")
        )
        try GatewayServer.configurePipeline(
            channel.pipeline.syncOperations,
            configuration: GatewayServer.Configuration(host: "127.0.0.1", port: 0),
            context: context
        )
        let target = "/v1/convai/test-invocations?\(query)"
        let page = ByteBuffer(string: FakeUpstream.page(for: target))
        let packed = page.withUnsafeReadableBytes { Gzip.compress($0) } ?? []
        cache.store(
            CachedPage(
                body: ByteBuffer(bytes: packed),
                coding: .gzip,
                identityByteCount: page.readableBytes,
                contentType: "application/json",
                storedAt: cache.now(),
                modifiedAt: 0
            ),
            for: CacheKey(credential: CredentialID(apiKey), query: try ListQuery.parse(Substring(query)))
        )
        let field = acceptEncoding.map { "Accept-Encoding: \($0)\r\n" } ?? ""
        request = ByteBuffer(string: "GET \(target) HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\(field)\r\n")
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        let answered = try hit()
        let expected = acceptEncoding == nil ? page.readableBytes : packed.count
        precondition(answered > expected, "the request must be answered with the page")
    }

    /// Sends the request and reads its answer; returns the answer's length.
    func hit() throws -> Int {
        try channel.writeInbound(request)
        var bytes = 0
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) { bytes += buffer.readableBytes }
        return bytes
    }
}

/// ``RequestDecoder`` alone on an `EmbeddedChannel`, and a typical request head (as `wrk` or a client
/// library sends it) to decode again and again.
///
/// Not thread-safe: each benchmark owns one and uses it from its measuring thread only.
final class DecoderFixture {
    private let channel = EmbeddedChannel(
        handler: RequestDecoder(maxHeadBytes: 16 * 1024, headTimeout: .seconds(10))
    )
    private let request = ByteBuffer(
        string: "GET /v1/convai/test-invocations?agent_id=agent_123&page_size=30 HTTP/1.1\r\nHost: h\r\n"
            + "Host: 127.0.0.1:8080\r\nUser-Agent: wrk\r\nAccept: */*\r\n\r\n"
    )

    init() throws {
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        let parts = try decode()
        precondition(parts == 2, "a GET is a head and an end")
    }

    /// Decodes the request; returns how many parts it came to.
    func decode() throws -> Int {
        try channel.writeInbound(request)
        var parts = 0
        while try channel.readInbound(as: HTTPServerRequestPart.self) != nil { parts += 1 }
        return parts
    }
}
