import NIOCore
import NIOPosix

extension RedisServer {
    /// Whether a server answers `PING` on `socketPath` (after `AUTH` with `password`) within `timeout`,
    /// spoken in raw RESP so the fixture needs no Redis client.
    static func ping(socketPath: String, password: String?, timeout: TimeAmount) async -> Bool {
        let eventLoop = MultiThreadedEventLoopGroup.singleton.next()
        let promise = eventLoop.makePromise(of: Bool.self)
        let done = NIOLoopBoundBox.makeEmptyBox(valueType: Bool.self, eventLoop: eventLoop)
        // Completes the probe once, whichever comes first: the answer, a refusal, the timeout.
        let finish: @Sendable (Bool) -> Void = { answered in
            guard done.value == nil else { return }
            done.value = answered
            promise.succeed(answered)
        }
        var request = ""
        if let password { request += command(["AUTH", password]) }
        request += command(["PING"])
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(timeout)
            .channelInitializer { [request] channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(PingHandler(request: request, finish: finish))
                }
            }
        bootstrap.connect(unixDomainSocketPath: socketPath).whenComplete { result in
            switch result {
            case .failure:
                finish(false)
            case .success(let channel):
                eventLoop.scheduleTask(in: timeout) {
                    finish(false)
                    channel.close(promise: nil)
                }
            }
        }
        return (try? await promise.futureResult.get()) ?? false
    }

    /// `arguments` as a RESP command.
    private static func command(_ arguments: [String]) -> String {
        "*\(arguments.count)\r\n" + arguments.map { "$\($0.utf8.count)\r\n\($0)\r\n" }.joined()
    }
}

/// Writes a request on connecting and reports whether the replies end in `+PONG`.
private final class PingHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let request: String
    private let finish: @Sendable (Bool) -> Void
    private var received = ""

    init(request: String, finish: @escaping @Sendable (Bool) -> Void) {
        self.request = request
        self.finish = finish
    }

    func channelActive(context: ChannelHandlerContext) {
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: request)), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        received += String(buffer: unwrapInboundIn(data))
        if received.contains("+PONG\r\n") {
            finish(true)
            context.close(promise: nil)
        } else if received.hasPrefix("-") || received.contains("\r\n-") {
            finish(false)
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish(false)
        context.fireChannelInactive()
    }
}

@available(*, unavailable)
extension PingHandler: Sendable {}
