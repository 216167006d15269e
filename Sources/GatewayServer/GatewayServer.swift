import GatewayCore
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization

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
        /// Client connections open at once; one more is closed as soon as it is accepted.
        public var maxConnections: Int
        /// How long a request head may take to arrive, from its first byte.
        public var requestHeadTimeout: TimeAmount
        /// Which routes the listener serves.
        public var role: ListenerRole
        /// The listener's TLS identity; `nil`: plain HTTP.
        public var tls: ListenerTLS?

        /// Creates listener settings.
        public init(
            host: String,
            port: Int,
            idleTimeout: TimeAmount = .seconds(60),
            maxHeadBytes: Int = 16 * 1024,
            maxBodyBytes: Int = 64 * 1024,
            maxConnections: Int = 4096,
            requestHeadTimeout: TimeAmount = .seconds(10),
            role: ListenerRole = .combined,
            tls: ListenerTLS? = nil
        ) {
            self.tls = tls
            self.role = role
            self.maxConnections = maxConnections
            self.requestHeadTimeout = requestHeadTimeout
            self.host = host
            self.port = port
            self.idleTimeout = idleTimeout
            self.maxHeadBytes = maxHeadBytes
            self.maxBodyBytes = maxBodyBytes
        }
    }

    private let channel: any Channel
    private let connections: ConnectionTracker
    private let context: ServerContext

    /// The bound address.
    public let localAddress: SocketAddress

    /// The bound port.
    public var localPort: Int { localAddress.port ?? 0 }

    private init(
        channel: any Channel,
        localAddress: SocketAddress,
        connections: ConnectionTracker,
        context: ServerContext
    ) {
        self.channel = channel
        self.localAddress = localAddress
        self.connections = connections
        self.context = context
    }

    /// Client connections open now.
    public var connectionCount: Int { connections.count }

    /// Binds and starts accepting connections on `group`.
    public static func start(
        configuration: Configuration,
        context: ServerContext,
        group: any EventLoopGroup
    ) async throws -> GatewayServer {
        let connections = ConnectionTracker()
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            // A client may send its request and shut down its sending side: it still gets its answer.
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { channel in
                // Over the limit: close at once, before reading anything, so the process keeps its
                // descriptors and memory for the connections it has.
                guard connections.add(channel, limit: configuration.maxConnections) else {
                    return channel.close()
                }
                return channel.eventLoop.makeCompletedFuture {
                    try configurePipeline(
                        channel.pipeline.syncOperations,
                        configuration: configuration,
                        context: context
                    )
                }
            }
            .bind(host: configuration.host, port: configuration.port)
            .get()
        guard let address = channel.localAddress else {
            try await channel.close()
            throw ChannelError.unknownLocalAddress
        }
        context.startStatusSampler(on: channel.eventLoop)
        return GatewayServer(channel: channel, localAddress: address, connections: connections, context: context)
    }

    /// Sets up one connection's handler: ``HTTPHandler``, which reads requests within the head's limits (size
    /// and time), holds back pipelined requests, writes its answers' bytes itself and closes idle
    /// connections. With TLS, BoringSSL's handler comes first, with the identity in force when the connection
    /// was accepted, and the handshake must end within the head timeout; bytes that are not TLS end the
    /// handshake, and the connection, before any route sees them.
    public static func configurePipeline(
        _ pipeline: ChannelPipeline.SynchronousOperations,
        configuration: Configuration,
        context: ServerContext
    ) throws {
        if let tls = configuration.tls {
            try pipeline.addHandler(NIOSSLServerHandler(context: tls.context))
            try pipeline.addHandler(TLSHandshakeDeadline(timeout: configuration.requestHeadTimeout))
        }
        try pipeline.addHandler(
            HTTPHandler(
                context: context,
                maxHeadBytes: configuration.maxHeadBytes,
                headTimeout: configuration.requestHeadTimeout,
                maxBodyBytes: configuration.maxBodyBytes,
                idleTimeout: configuration.idleTimeout,
                role: configuration.role,
                coalescesAnswers: configuration.tls != nil
            )
        )
    }

    /// Stops accepting and closes the listening socket; open connections finish on their own.
    public func close() async throws {
        context.stopStatusSampler()
        try await channel.close()
    }

    /// Shuts down gracefully: `/readyz` turns 503, the listener closes, idle connections close, and
    /// requests in flight get up to `grace` to finish (their connections close after the answer); what is
    /// still open then is closed.
    public func shutdown(grace: TimeAmount) async {
        context.setReady(false)
        context.stopStatusSampler()
        // A connection accepted just before the listener closes, but set up after, is refused too.
        connections.refuseNew()
        try? await channel.close()
        for connection in connections.all {
            // HTTPHandler closes an idle connection at once, a busy one after its answer.
            connection.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        }
        let deadline = NIODeadline.now() + grace
        while connections.count > 0, NIODeadline.now() < deadline {
            try? await Task.sleep(for: .milliseconds(10))
        }
        // All at once: a TLS connection's close may wait (up to a second) for the client's close_notify.
        await withTaskGroup(of: Void.self) { group in
            for connection in connections.all { group.addTask { try? await connection.close() } }
        }
    }
}

/// The client connections that are open, so shutdown can reach each one.
final class ConnectionTracker: Sendable {
    private struct State {
        var open: [ObjectIdentifier: any Channel] = [:]
        var refusing = false
    }

    private let state = Locked(State())

    /// Tracks `channel` unless `limit` connections are open already, or shutdown began (then `false`).
    func add(_ channel: any Channel, limit: Int = .max) -> Bool {
        let id = ObjectIdentifier(channel)
        let added = state.withLock { state in
            guard !state.refusing, state.open.count < limit else { return false }
            state.open[id] = channel
            return true
        }
        if added {
            channel.closeFuture.whenComplete { _ in self.state.withLock { _ = $0.open.removeValue(forKey: id) } }
        }
        return added
    }

    /// From now on, ``add(_:limit:)`` refuses every connection.
    func refuseNew() { state.withLock { $0.refusing = true } }

    var all: [any Channel] { state.withLock { Array($0.open.values) } }

    var count: Int { state.withLock { $0.open.count } }
}
