import GatewayCore
import NIOCore
import NIOHTTP1

/// Serves one client connection: routes each request, writes each answer whole, keeps the connection
/// alive when the client asks to, and closes it on protocol errors and when idle.
///
/// Runs on the connection's event loop only. `HTTPServerPipelineHandler` in front of it holds back
/// pipelined requests until the answer to the current one is written, so there is one request at a time.
final class HTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private enum State {
        /// Waiting for a request head.
        case idle
        /// A head arrived; its body (ignored, but counted) is arriving.
        case receiving(HTTPRequestHead, bodyBytes: Int)
        /// The answer is being prepared; reads are held back by the pipelining handler.
        case responding
        /// Closing; nothing more is read or written.
        case closed
    }

    private let service: ListService
    private let maxBodyBytes: Int
    private let idleTimeout: TimeAmount
    private var state = State.idle
    /// Closes the connection when it fires: armed while waiting for a request and while one arrives.
    private var idleTimer: Scheduled<Void>?

    init(service: ListService, maxBodyBytes: Int, idleTimeout: TimeAmount) {
        self.service = service
        self.maxBodyBytes = maxBodyBytes
        self.idleTimeout = idleTimeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { armIdleTimer(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        armIdleTimer(context: context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        idleTimer?.cancel()
        idleTimer = nil
        state = .closed
        context.fireChannelInactive()
    }

    /// Idle between requests, or a client too slow to send a whole request: either way the timer closes the
    /// connection. It does not run while an answer is being prepared (the upstream timeout bounds that).
    private func armIdleTimer(context: ChannelHandlerContext) {
        idleTimer?.cancel()
        idleTimer = context.eventLoop.assumeIsolated().scheduleTask(in: idleTimeout) {
            switch self.state {
            case .idle, .receiving:
                self.state = .closed
                context.close(promise: nil)
            case .responding, .closed:
                break
            }
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            guard case .idle = state else { return }
            state = .receiving(head, bodyBytes: 0)
            armIdleTimer(context: context)
        case .body(let chunk):
            guard case .receiving(let head, let bodyBytes) = state else { return }
            let total = bodyBytes + chunk.readableBytes
            guard total <= maxBodyBytes else {
                state = .responding
                write(GatewayError.bodyTooLarge.response(), for: head, keepAlive: false, context: context)
                return
            }
            state = .receiving(head, bodyBytes: total)
        case .end:
            guard case .receiving(let head, _) = state else { return }
            state = .responding
            idleTimer?.cancel()
            idleTimer = nil
            respond(to: head, context: context)
        }
    }

    private func respond(to head: HTTPRequestHead, context: ChannelHandlerContext) {
        switch Route(method: head.method, uri: head.uri) {
        case .list(let query, let isHead):
            service.respond(toQuery: query, on: context.eventLoop).assumeIsolated().whenSuccess { response in
                self.write(response, for: head, isHead: isHead, keepAlive: head.isKeepAlive, context: context)
            }
        case .refuse(let refusal):
            let error: GatewayError
            var response: GatewayResponse
            switch refusal {
            case .notFound:
                error = .notFound
                response = error.response()
            case .methodNotAllowed:
                error = .methodNotAllowed
                response = error.response()
                // Every answer on the list path says what the cache did: here, nothing.
                response.headers.add(name: "Cache-Status", value: "\(ListService.cacheName); detail=\(error)")
                response.headers.add(name: "Age", value: "0")
            case .notOriginForm:
                error = .badRequest("only origin-form request targets (/path?query) are served")
                response = error.response()
            }
            write(
                response,
                for: head,
                keepAlive: head.isKeepAlive && !error.closesConnection,
                context: context
            )
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let parserError = error as? HTTPParserError else {
            context.close(promise: nil)
            return
        }
        switch state {
        case .idle, .receiving:
            let gatewayError: GatewayError =
                parserError == .headerOverflow ? .headersTooLarge : .badRequest("malformed HTTP request")
            state = .responding
            write(gatewayError.response(), version: .http1_1, isHead: false, keepAlive: false, context: context)
        case .responding, .closed:
            // An answer is already on its way; the stream cannot be trusted past it.
            state = .closed
            context.close(promise: nil)
        }
    }

    private func write(
        _ response: GatewayResponse,
        for head: HTTPRequestHead,
        isHead: Bool = false,
        keepAlive: Bool,
        context: ChannelHandlerContext
    ) {
        write(response, version: head.version, isHead: isHead, keepAlive: keepAlive, context: context)
    }

    private func write(
        _ response: GatewayResponse,
        version: HTTPVersion,
        isHead: Bool,
        keepAlive: Bool,
        context: ChannelHandlerContext
    ) {
        guard case .responding = state else { return }
        var headers = response.headers
        headers.replaceOrAdd(name: "Content-Length", value: String(response.body.readableBytes))
        if !keepAlive {
            headers.replaceOrAdd(name: "Connection", value: "close")
        } else if version.major == 1, version.minor == 0 {
            headers.replaceOrAdd(name: "Connection", value: "keep-alive")
        }
        let responseHead = HTTPResponseHead(version: version, status: response.status, headers: headers)
        context.write(wrapOutboundOut(.head(responseHead)), promise: nil)
        if !isHead, response.body.readableBytes > 0 {
            context.write(wrapOutboundOut(.body(.byteBuffer(response.body))), promise: nil)
        }
        if keepAlive {
            state = .idle
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            armIdleTimer(context: context)
        } else {
            state = .closed
            let written = context.eventLoop.makePromise(of: Void.self)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: written)
            written.futureResult.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        }
    }
}

@available(*, unavailable)
extension HTTPHandler: Sendable {}
