import GatewayCore
import Logging
import NIOCore
import NIOPosix
import NIOSSL

/// A Redis client for the shared tier: one connection per event loop, opened when that loop first sends,
/// with every command pipelined on it and every command bounded by a timeout.
///
/// hiredis encodes the commands and parses the replies; SwiftNIO does the I/O on the caller's own event
/// loop, so a command costs no thread hop when sent from a handler and no thread of its own. A command's
/// future fails with a ``RedisError``: `.server` for an error reply (callers only ever see success values),
/// `.timeout` when no answer came within `timeout` (the connection is then closed and reopened by the next
/// command, since its order of replies can no longer be trusted), `.connectionFailed` while Redis cannot be
/// reached. After a failed or lost connection, the next command reconnects, but not sooner than
/// `reconnectInterval` after the previous attempt: until then commands fail at once, so a dead Redis costs
/// neither waiting nor a storm of connection attempts.
///
/// The endpoint's `AUTH` and `SELECT` are sent on each new connection before any command. The password
/// never appears in a log line or an error.
public final class RedisClient: Sendable {
    /// Where Redis is.
    public let endpoint: RedisEndpoint
    /// The longest wait for one answer (and for a connection to be made).
    public let timeout: TimeAmount
    /// The shortest time between two connection attempts on one event loop.
    public let reconnectInterval: TimeAmount
    let group: any EventLoopGroup
    let logger: Logger
    /// `AUTH` and `SELECT`, encoded once; a failure to encode them fails every connection.
    private let handshake: Result<[(name: String, command: ByteBuffer)], RedisError>
    /// For `rediss://`: the TLS every connection starts with (`nil` for `redis://` and `unix://`).
    private let tls: RedisTLS?
    private let state = Locked(State())

    private struct State {
        var connections: [ObjectIdentifier: LoopConnection] = [:]
        var subscriptions: [ObjectIdentifier: RedisSubscription] = [:]
        var isShutdown = false
    }

    /// The connection of one event loop, reachable from any thread, used on its loop only.
    private struct LoopConnection: Sendable {
        let eventLoop: any EventLoop
        let box: NIOLoopBoundBox<RedisConnectionSlot?>
    }

    /// A client of `endpoint` whose commands run on the loops of `group` (each on the loop it is sent on),
    /// bounded by `timeout`, and that reconnects at most every `reconnectInterval`.
    public init(
        endpoint: RedisEndpoint,
        timeout: TimeAmount,
        group: any EventLoopGroup,
        logger: Logger,
        reconnectInterval: TimeAmount = .milliseconds(250),
        tls: RedisTLS? = nil
    ) {
        self.tls = endpoint.usesTLS ? tls : nil
        self.endpoint = endpoint
        self.timeout = timeout
        self.reconnectInterval = reconnectInterval
        self.group = group
        self.logger = logger
        self.handshake = Result { () throws(RedisError) in
            // A `rediss://` endpoint never falls back to plain text: without TLS, it has no connection.
            guard !endpoint.usesTLS || tls != nil else {
                throw RedisError.connectionFailed("\(endpoint) needs TLS, and the client was given none")
            }
            return try RedisClient.handshake(for: endpoint)
        }
    }

    /// Sends the command `arguments` (its name first) on `eventLoop`'s connection; the future, completed on
    /// `eventLoop`, holds the reply, or fails with a ``RedisError``.
    public func send(_ arguments: [RedisArgument], on eventLoop: any EventLoop) -> EventLoopFuture<RESPValue> {
        let command: ByteBuffer
        do {
            command = try RESPCommand.encode(arguments)
        } catch {
            return eventLoop.makeFailedFuture(error)
        }
        return send(encoded: command, on: eventLoop)
    }

    /// Sends the command `arguments` on a loop of the group (the current one when called on one of them).
    public func send(_ arguments: [RedisArgument]) async throws -> RESPValue {
        try await send(arguments, on: group.any()).get()
    }

    /// Sends an already encoded command.
    func send(encoded command: ByteBuffer, on eventLoop: any EventLoop) -> EventLoopFuture<RESPValue> {
        guard let connection = loopConnection(for: eventLoop) else {
            return eventLoop.makeFailedFuture(RedisError.closed)
        }
        if eventLoop.inEventLoop {
            return send(command, through: connection)
        }
        return eventLoop.flatSubmit { self.send(command, through: connection) }
    }

    /// Closes every connection and cancels every subscription; commands still waiting, and any sent
    /// afterwards, fail with ``RedisError/closed``.
    public func shutdown() async {
        let (connections, subscriptions) = state.withLock { state in
            state.isShutdown = true
            defer {
                state.connections = [:]
                state.subscriptions = [:]
            }
            return (Array(state.connections.values), Array(state.subscriptions.values))
        }
        for subscription in subscriptions {
            try? await subscription.cancel().get()
        }
        for connection in connections {
            let box = connection.box
            try? await connection.eventLoop.submit {
                // A slot left shut down here also stops a send that was on its way to this loop.
                let slot = box.value ?? RedisConnectionSlot()
                box.value = slot
                slot.shutdown()
            }.get()
        }
    }

    // MARK: - Connections

    private func loopConnection(for eventLoop: any EventLoop) -> LoopConnection? {
        state.withLock { state in
            guard !state.isShutdown else { return nil }
            let key = ObjectIdentifier(eventLoop)
            if let connection = state.connections[key] { return connection }
            let connection = LoopConnection(
                eventLoop: eventLoop,
                box: .makeEmptyBox(valueType: RedisConnectionSlot.self, eventLoop: eventLoop)
            )
            state.connections[key] = connection
            return connection
        }
    }

    /// Runs on `connection`'s loop.
    private func send(_ command: ByteBuffer, through connection: LoopConnection) -> EventLoopFuture<RESPValue> {
        let eventLoop = connection.eventLoop
        let slot: RedisConnectionSlot
        if let existing = connection.box.value {
            slot = existing
        } else {
            slot = RedisConnectionSlot()
            connection.box.value = slot
        }
        let promise = eventLoop.makePromise(of: RESPValue.self)
        switch slot.connection(
            now: eventLoop.now,
            interval: reconnectInterval,
            connect: { self.connect(on: eventLoop) }
        ) {
        case .success(let handler): handler.send(command, promise: promise)
        case .failure(let error): promise.fail(error)
        }
        return promise.futureResult
    }

    /// A new connection on `eventLoop` (where this runs), connecting now; commands can be given to it at
    /// once. `onPush` makes it a subscriber's connection.
    func connect(
        on eventLoop: any EventLoop,
        onPush: ((RESPValue) -> Void)? = nil,
        onClose: ((RedisError) -> Void)? = nil
    ) -> RedisConnectionHandler {
        let logger = logger
        let peer = endpoint.description
        let handler = RedisConnectionHandler(
            eventLoop: eventLoop,
            peer: peer,
            handshake: (try? handshake.get()) ?? [],
            timeout: timeout,
            secret: endpoint.password?.revealed,
            onPush: onPush,
            onClose: { error in
                logger.debug("Redis connection closed", metadata: ["redis": "\(peer)", "reason": "\(error)"])
                onClose?(error)
            }
        )
        if case .failure(let error) = handshake {
            handler.connectFailed(error)
            return handler
        }
        let bound = NIOLoopBound(handler, eventLoop: eventLoop)
        let tlsHostname: String?? =
            if tls != nil, case .tcp(let host, _) = endpoint.address { .some(RedisTLS.serverHostname(host)) } else {
                .none
            }
        let tls = tls
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(timeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    // The commands written before the handshake ends wait in the TLS handler, in order.
                    if let tls, case .some(let hostname) = tlsHostname {
                        try channel.pipeline.syncOperations.addHandler(
                            NIOSSLClientHandler(context: tls.context, serverHostname: hostname)
                        )
                    }
                    try channel.pipeline.syncOperations.addHandler(bound.value)
                }
            }
        let connected: EventLoopFuture<any Channel>
        switch endpoint.address {
        case .tcp(let host, let port): connected = bootstrap.connect(host: host, port: port)
        case .unix(let path): connected = bootstrap.connect(unixDomainSocketPath: path)
        }
        connected.whenFailure { error in bound.value.connectFailed(error) }
        return handler
    }

    /// `AUTH` (with the user when there is one) and `SELECT` when the endpoint needs them.
    private static func handshake(
        for endpoint: RedisEndpoint
    ) throws(RedisError) -> [(name: String, command: ByteBuffer)] {
        var steps: [(name: String, command: ByteBuffer)] = []
        if let password = endpoint.password {
            var arguments: [RedisArgument] = ["AUTH"]
            if let username = endpoint.username { arguments.append(.string(username)) }
            arguments.append(.string(password.revealed))
            let command = try RESPCommand.encode(arguments)
            steps.append((name: "AUTH", command: command))
        }
        if endpoint.database != 0 {
            let command = try RESPCommand.encode(["SELECT", .integer(endpoint.database)])
            steps.append((name: "SELECT", command: command))
        }
        return steps
    }

    // MARK: - Subscriptions

    /// Registers `subscription` so ``shutdown()`` cancels it; `false` when the client is shut down.
    func register(_ subscription: RedisSubscription) -> Bool {
        state.withLock { state in
            guard !state.isShutdown else { return false }
            state.subscriptions[ObjectIdentifier(subscription)] = subscription
            return true
        }
    }

    /// Forgets a cancelled subscription.
    func unregister(_ subscription: RedisSubscription) {
        _ = state.withLock { $0.subscriptions.removeValue(forKey: ObjectIdentifier(subscription)) }
    }
}
