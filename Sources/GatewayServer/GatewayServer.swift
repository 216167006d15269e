import GatewayCore
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix

/// The listener: binds, accepts, and gives each connection an HTTP/1.1 pipeline ending in ``ListService``.
public final class GatewayServer: Sendable {
    /// Listener settings.
    public struct Configuration: Sendable {
        /// Address to bind.
        public var host: String
        /// Port to bind; 0 picks a free one (see ``GatewayServer/localPort``).
        public var port: Int
        /// A connection is closed when no request arrives for this long, or a request takes longer to arrive.
        public var idleTimeout: TimeAmount
        /// The request line and headers together; more is answered 431.
        public var maxHeadBytes: Int
        /// Request bodies are not used; a larger one is answered 413.
        public var maxBodyBytes: Int

        /// Creates listener settings.
        public init(
            host: String,
            port: Int,
            idleTimeout: TimeAmount = .seconds(60),
            maxHeadBytes: Int = 16 * 1024,
            maxBodyBytes: Int = 64 * 1024
        ) {
            self.host = host
            self.port = port
            self.idleTimeout = idleTimeout
            self.maxHeadBytes = maxHeadBytes
            self.maxBodyBytes = maxBodyBytes
        }
    }

    private let channel: any Channel

    /// The bound address.
    public let localAddress: SocketAddress

    /// The bound port.
    public var localPort: Int { localAddress.port ?? 0 }

    private init(channel: any Channel, localAddress: SocketAddress) {
        self.channel = channel
        self.localAddress = localAddress
    }

    /// Binds and starts accepting connections on `group`.
    public static func start(
        configuration: Configuration,
        service: ListService,
        group: any EventLoopGroup
    ) async throws -> GatewayServer {
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try configurePipeline(
                        channel.pipeline.syncOperations,
                        configuration: configuration,
                        service: service
                    )
                }
            }
            .bind(host: configuration.host, port: configuration.port)
            .get()
        guard let address = channel.localAddress else {
            try await channel.close()
            throw ChannelError.unknownLocalAddress
        }
        return GatewayServer(channel: channel, localAddress: address)
    }

    /// Sets up one connection's handlers: the HTTP/1.1 codec with head limits, pipelining assistance, the
    /// and ``HTTPHandler`` (which also closes idle connections).
    static func configurePipeline(
        _ pipeline: ChannelPipeline.SynchronousOperations,
        configuration: Configuration,
        service: ListService
    ) throws {
        var limits = NIOHTTPDecoderLimitConfiguration()
        // llhttp counts the request target with the header bytes, so this bounds the whole head.
        limits.maxHeaderFieldSize = configuration.maxHeadBytes
        limits.maxHeaderListSize = configuration.maxHeadBytes
        limits.maxHeaderFieldCount = 256
        try pipeline.configureHTTPServerPipeline(
            withPipeliningAssistance: true,
            withErrorHandling: false,
            withEncoderConfiguration: HTTPResponseEncoder.Configuration(),
            withDecoderLimitConfiguration: limits
        )
        try pipeline.addHandler(
            HTTPHandler(
                service: service,
                maxBodyBytes: configuration.maxBodyBytes,
                idleTimeout: configuration.idleTimeout
            )
        )
    }

    /// Stops accepting and closes the listening socket; open connections finish on their own.
    public func close() async throws {
        try await channel.close()
    }
}
