import GatewayCore
import GatewayTesting
import Logging
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@testable import GatewayServer

/// A connection whose upstream requests stay open until the test answers them.
struct PendingConnectionFixture {
    let upstream = PendingUpstreamClient()
    let channel = EmbeddedChannel()

    init() throws {
        let service = ListService(
            cache: ResponseCache(maxBytes: 1 << 20, ttlSeconds: 30),
            upstream: upstream,
            governor: UpstreamGovernor(
                configuration: .init(maxConcurrency: 4, maxQueue: 16, queueTimeout: .seconds(5), backoffMaxSeconds: 30)
            ),
            apiKey: Secret("k"),
            waitLimit: .seconds(10),
            logger: Logger(label: "test")
        )
        let context = ServerContext(
            service: service,
            cache: ResponseCache(maxBytes: 1 << 20, ttlSeconds: 30),
            governor: UpstreamGovernor(
                configuration: .init(maxConcurrency: 1, maxQueue: 1, queueTimeout: .seconds(1), backoffMaxSeconds: 1)
            ),
            settings: .init(accessLog: false, adminToken: nil),
            accessLogger: Logger(label: "test")
        )
        try GatewayServer.configurePipeline(
            channel.pipeline.syncOperations,
            configuration: GatewayServer.Configuration(host: "127.0.0.1", port: 0),
            context: context
        )
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
    }

    func send(_ text: String) { channel.send(text) }

    func output() throws -> String { try channel.writtenText() }
}

@Suite("HTTPHandler under hostile clients")
struct HTTPHandlerProtectionTests {
    @Test func aLongPipelineBehindASlowRequestIsAnsweredWithoutDeepeningTheStack() throws {
        let connection = try PendingConnectionFixture()
        let pipelined = 20_000
        connection.send(
            "GET /v1/convai/test-invocations?cursor=slow HTTP/1.1\r\nHost: h\r\n\r\n"
                + String(repeating: "GET / HTTP/1.1\r\nHost: h\r\n\r\n", count: pipelined)
        )
        #expect(connection.upstream.openTargets.count == 1)

        connection.upstream.answer(
            .success(UpstreamResponse(status: 200, headers: [:], body: ByteBuffer(string: "{}")))
        )
        connection.channel.embeddedEventLoop.run()

        let output = try connection.output()
        #expect(output.ranges(of: "HTTP/1.1 200 OK").count == 1)
        #expect(output.ranges(of: "HTTP/1.1 404 Not Found").count == pipelined)
        #expect(connection.channel.isActive)
    }

    @Test func noAnswerIsWrittenWhileTheClientIsNotReading() throws {
        let connection = try PendingConnectionFixture()
        connection.channel.isWritable = false
        connection.channel.pipeline.fireChannelWritabilityChanged()

        connection.send("GET /elsewhere HTTP/1.1\r\nHost: h\r\n\r\n")
        #expect(try connection.output().isEmpty)

        connection.channel.isWritable = true
        connection.channel.pipeline.fireChannelWritabilityChanged()
        connection.channel.embeddedEventLoop.run()
        #expect(try connection.output().hasPrefix("HTTP/1.1 404 Not Found"))
    }

    @Test func aClientThatNeverReadsIsClosedAfterTheIdleTimeout() throws {
        let connection = try PendingConnectionFixture()
        connection.channel.isWritable = false
        connection.channel.pipeline.fireChannelWritabilityChanged()

        connection.send("GET /elsewhere HTTP/1.1\r\nHost: h\r\n\r\n")
        connection.channel.embeddedEventLoop.advanceTime(by: .seconds(61))

        #expect(!connection.channel.isActive)
    }

    @Test func aHeadSentAByteAtATimeIsCutOffAfterTheHeadTimeout() throws {
        let connection = try PendingConnectionFixture()
        for (second, byte) in "GET /healthz HTTP/1.1\r\nHost: x".enumerated() where second < 12 {
            connection.send(String(byte))
            connection.channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        }
        #expect(!connection.channel.isActive)
    }

    @Test func aQuietKeepAliveConnectionIsNotCutOffByTheHeadTimeout() throws {
        let connection = try PendingConnectionFixture()
        connection.send("GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n")
        connection.channel.embeddedEventLoop.advanceTime(by: .seconds(30))
        #expect(connection.channel.isActive)
        connection.send("GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n")
        #expect(try connection.output().contains("HTTP/1.1 200 OK"))
    }
}
