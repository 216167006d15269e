import NIOCore

/// One connection to Redis: the thin shell around ``StateMachine``. It feeds the machine the channel's
/// events and the replies its ``RESPReader`` parses, and performs what the machine asks: writes, completing
/// promises, the one scheduled timer, closing.
///
/// Created by its owner before the connection exists, so commands can be given to it at once; they wait
/// in the machine until the handshake is answered. Runs on its event loop only: the owner calls ``send(_:promise:)``
/// there, and the callbacks (`onPush`, `onClose`) run there.
final class RedisConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var machine: StateMachine<EventLoopPromise<RESPValue>>
    /// `nil` when hiredis could not allocate one: the first read then closes the connection.
    private let reader = RESPReader()
    private let eventLoop: any EventLoop
    private var context: ChannelHandlerContext?
    /// The one scheduled check of the machine's deadlines.
    private var timer: Scheduled<Void>?
    private let onPush: ((RESPValue) -> Void)?
    /// Called once, when the connection closes or fails, with why.
    private var onClose: ((RedisError) -> Void)?
    /// What `could not connect` messages name: the endpoint as logs may show it.
    private let peer: String

    /// A connection on `eventLoop` to `peer` that sends `handshake` first and bounds every command by
    /// `timeout`. With `onPush`, published messages go to it (a subscriber's connection).
    init(
        eventLoop: any EventLoop,
        peer: String,
        handshake: [(name: String, command: ByteBuffer)],
        timeout: TimeAmount,
        secret: String?,
        onPush: ((RESPValue) -> Void)? = nil,
        onClose: ((RedisError) -> Void)? = nil
    ) {
        self.eventLoop = eventLoop
        self.peer = peer
        self.machine = StateMachine(handshake: handshake, timeout: timeout, pushes: onPush != nil, secret: secret)
        self.onPush = onPush
        self.onClose = onClose
    }

    /// Whether the connection has closed or failed; a closed handler is not reused.
    var isClosed: Bool { machine.isClosed }

    /// Why the connection closed; `nil` while it is open or connecting.
    var closeReason: RedisError? { machine.closeReason }

    /// Sends `command` (a whole encoded command); `promise` gets its reply.
    func send(_ command: ByteBuffer, promise: EventLoopPromise<RESPValue>) {
        eventLoop.preconditionInEventLoop()
        perform(machine.send(command, token: promise, now: eventLoop.now))
    }

    /// The connection could not be made.
    func connectFailed(_ error: any Error) {
        perform(machine.closed(.connectionFailed("could not connect to \(peer): \(error)")))
    }

    /// Closes the connection; every command still waiting fails with ``RedisError/closed``.
    func shutdown() {
        perform(machine.closed(.closed))
    }

    // MARK: - Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        // Shut down (or timed out) before its channel existed: the channel must not stay open unused.
        if machine.isClosed {
            context.close(promise: nil)
        } else if context.channel.isActive {
            perform(machine.connected(now: eventLoop.now))
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        lost("the connection to \(peer) closed")
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        perform(machine.connected(now: eventLoop.now))
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        lost("the connection to \(peer) closed")
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        perform(machine.closed(.connectionFailed("the connection to \(peer) failed: \(error)")))
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data)
        guard let reader else {
            perform(machine.closed(.protocolError("hiredis could not allocate a reader")))
            return
        }
        do throws(RedisError) {
            try reader.feed(bytes)
            while !machine.isClosed, let value = try reader.next() {
                perform(machine.received(value))
            }
        } catch {
            perform(machine.closed(error))
        }
    }

    // MARK: - Actions

    /// The channel went away. While still connecting, the failed connect's own error (which the owner
    /// passes to ``connectFailed(_:)`` in the same loop tick) says more, so it is given the chance first.
    private func lost(_ detail: String) {
        guard !machine.isClosed else { return }
        guard machine.isConnecting else {
            perform(machine.closed(.connectionFailed(detail)))
            return
        }
        eventLoop.assumeIsolated().execute {
            self.perform(self.machine.closed(.connectionFailed("could not connect to \(self.peer)")))
        }
    }

    private func perform(_ action: StateMachine<EventLoopPromise<RESPValue>>.Action) {
        switch action {
        case .none:
            break
        case .write(let commands):
            if let context {
                for command in commands { context.write(wrapOutboundOut(command), promise: nil) }
                context.flush()
            }
        case .succeed(let promise, let value):
            promise.succeed(value)
        case .fail(let promise, let error):
            promise.fail(error)
        case .push(let value):
            onPush?(value)
        case .close(let error, let failing):
            // The machine is closed before any promise runs its callbacks, so a callback that sends again
            // finds this handler closed and gets a new connection.
            context?.close(promise: nil)
            for (promise, reason) in failing { promise.fail(reason) }
            let onClose = self.onClose
            self.onClose = nil
            onClose?(error)
        }
        perform(machine.timer())
    }

    private func perform(_ action: StateMachine<EventLoopPromise<RESPValue>>.TimerAction) {
        switch action {
        case .none:
            break
        case .arm(let deadline):
            timer?.cancel()
            timer = eventLoop.assumeIsolated().scheduleTask(deadline: deadline) {
                self.timer = nil
                self.perform(self.machine.timerFired(now: self.eventLoop.now))
            }
        case .cancel:
            timer?.cancel()
            timer = nil
        }
    }
}

@available(*, unavailable)
extension RedisConnectionHandler: Sendable {}
