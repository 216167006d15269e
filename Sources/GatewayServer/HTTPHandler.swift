import GatewayCore
import NIOCore
import NIOHTTP1

/// Serves one client connection: the thin shell around ``HTTPConnection/StateMachine`` (what to do next)
/// and ``HTTPConnection/TimerStateMachine`` (when the connection waited too long). It feeds them the
/// channel's events and the parts of requests read by a ``RequestReader``, and performs what they ask:
/// reads, answers from a ``Responder``, writes with ``ResponseEncoding``, flushes, the one scheduled timer,
/// closing. Each answered request is logged and counted by a ``RequestRecorder``.
///
/// Runs on the connection's event loop only, first in the pipeline. Waiting requests are answered in a
/// loop, not from inside the previous answer's write, so a long pipeline never deepens the stack.
final class HTTPHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    // The state below is changed by a dozen mutating calls per request. Each is a long access to a class's
    // stored property, which Swift otherwise checks at run time (`swift_beginAccess` and a thread-local
    // access set, both in `perf` profiles of a hit). Every access happens on the connection's event loop,
    // and none calls back into the handler before it returns (the machines return actions; answers that
    // come later come through futures), so two can never overlap.
    @exclusivity(unchecked) private var machine: HTTPConnection.StateMachine
    @exclusivity(unchecked) private var timers: HTTPConnection.TimerStateMachine
    /// The one scheduled check of ``timers``.
    private var timer: Scheduled<Void>?
    /// The requests read: parts are taken from it only while they can be handled at once, so requests that
    /// arrive while one is being answered wait in it as bytes.
    @exclusivity(unchecked) private var reader: RequestReader
    @exclusivity(unchecked) private var responder: Responder
    @exclusivity(unchecked) private var recorder: RequestRecorder
    /// The channel's allocator, for answers' heads.
    private var allocator = ByteBufferAllocator()
    /// The last answer's head buffer, to write the next head into. Once the socket has taken an answer,
    /// NIO no longer holds its buffer, and clearing it keeps its memory: a head then costs no allocation.
    /// (While NIO still holds it, clearing it makes a new one, as copy-on-write does.)
    private var spareHead: ByteBuffer?
    /// Which routes this listener serves.
    private let role: ListenerRole
    /// Whether an answer's body is copied after its head whatever its size: over TLS, each buffer written
    /// is a TLS record of its own (and a call into BoringSSL), so one buffer an answer is cheaper than a
    /// copy. Plain HTTP hands large bodies to the socket as buffers of their own.
    private let coalescesAnswers: Bool

    /// A handler reading requests with heads up to `maxHeadBytes` that take at most `headTimeout` to arrive,
    /// bodies up to `maxBodyBytes`, and closing the connection after `idleTimeout` without a request.
    init(
        context: ServerContext,
        maxHeadBytes: Int,
        headTimeout: TimeAmount,
        maxBodyBytes: Int,
        idleTimeout: TimeAmount,
        role: ListenerRole = .combined,
        coalescesAnswers: Bool = false
    ) {
        self.coalescesAnswers = coalescesAnswers
        self.role = role
        self.machine = HTTPConnection.StateMachine(maxBodyBytes: maxBodyBytes)
        self.timers = HTTPConnection.TimerStateMachine(idleTimeout: idleTimeout, headTimeout: headTimeout)
        self.reader = RequestReader(maxHeadBytes: maxHeadBytes)
        self.responder = Responder(context: context, role: role)
        self.recorder = RequestRecorder(context: context)
    }

    // MARK: - Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        perform(machine.writabilityChanged(isWritable: context.channel.isWritable), context: context)
        allocator = context.channel.allocator
        if context.channel.isActive { perform(timers.activity(at: context.eventLoop.now), context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        perform(timers.activity(at: context.eventLoop.now), context: context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        machine.closed()
        reader.close()
        perform(timers.close(), context: context)
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .some(.inputClosed) = event as? ChannelEvent {
            perform(machine.inputClosed(), context: context)
        } else if event is ChannelShouldQuiesceEvent {
            perform(machine.quiesce(), context: context)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        perform(.close(flush: false), context: context)
    }

    func read(context: ChannelHandlerContext) {
        perform(machine.readRequested(hasUnreadBytes: reader.hasUnreadBytes), context: context)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        let isWritable = context.channel.isWritable
        perform(machine.writabilityChanged(isWritable: isWritable), context: context)
        if isWritable { takeRequests(context: context) }
        context.fireChannelWritabilityChanged()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard machine.readStarted() else { return }
        reader.append(unwrapInboundIn(data))
        takeRequests(context: context)
        machine.readEnded()
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        perform(machine.readComplete(), context: context)
        context.fireChannelReadComplete()
    }

    // MARK: - Requests

    /// Takes the requests read, in order, for as long as each is answered at once; then reads again.
    private func takeRequests(context: ChannelHandlerContext) {
        guard machine.startTakingRequests() else { return }
        while machine.takesRequests {
            let part: RequestPart?
            do {
                part = try reader.next()
            } catch {
                perform(timers.close(), context: context)
                perform(machine.parseFailed(error, reason: reader.lastRefusal), context: context)
                break
            }
            guard let part else {
                // Only a head left incomplete by a read is timed: one that arrives whole needs no clock.
                if reader.isInsideHead, !timers.isTimingHead {
                    perform(timers.headBegan(at: context.eventLoop.now), context: context)
                }
                break
            }
            switch part {
            case .request(let head):
                timers.headCompleted()
                perform(timers.activity(at: context.eventLoop.now), context: context)
                let route = Route(method: head.method, uri: head.uri, role: role)
                perform(machine.requestReceived(head, route: route), context: context)
            case .head(let head):
                timers.headCompleted()
                perform(timers.activity(at: context.eventLoop.now), context: context)
                let route = Route(method: head.method, uri: head.uri, role: role)
                let isTeamUnknown = responder.isTeamUnknown(head, route: route)
                perform(machine.headReceived(head, route: route, isTeamUnknown: isTeamUnknown), context: context)
            case .body(let chunk):
                perform(machine.bodyReceived(chunk), context: context)
            case .end:
                perform(machine.endReceived(), context: context)
            }
        }
        perform(machine.stopTakingRequests(hasUnreadBytes: reader.hasUnreadBytes), context: context)
    }

    private func perform(_ action: HTTPConnection.StateMachine.Action, context: ChannelHandlerContext) {
        switch action {
        case .none:
            break
        case .read(let flush):
            if flush { context.flush() }
            context.read()
        case .flush:
            context.flush()
        case .respond(let head, let route, let body):
            respond(to: head, route: route, body: body, context: context)
        case .refuse(let error, let reason, let method):
            let response = responder.refuse(
                error,
                reason: reason,
                method: method,
                started: context.eventLoop.now,
                recorder: &recorder
            )
            answered(response, isHead: false, closes: false, context: context)
        case .waitForWritable:
            perform(timers.activity(at: context.eventLoop.now), context: context)
        case .sendContinue(let flush):
            context.write(
                wrapOutboundOut(allocator.buffer(staticString: "HTTP/1.1 100 Continue\r\n\r\n")),
                promise: nil
            )
            if flush { context.flush() }
        case .close(let flush):
            machine.closed()
            reader.close()
            perform(timers.close(), context: context)
            if flush { context.flush() }
            context.close(promise: nil)
        case .closeOutput(let linger):
            context.close(mode: .output, promise: nil)
            context.eventLoop.assumeIsolated().scheduleTask(in: linger) {
                context.close(promise: nil)
            }
        }
    }

    /// Answers a whole request, now or when its answer is ready.
    private func respond(to head: RequestHead, route: Route, body: ByteBuffer?, context: ChannelHandlerContext) {
        let answer = responder.answer(
            head,
            route: route,
            body: body,
            // When its head arrived (noted just then, for the idle timer): no second look at the clock.
            started: timers.lastActivity,
            recorder: &recorder,
            on: context.eventLoop
        )
        switch answer {
        case .now(let response, let isHead, let closes):
            answered(response, isHead: isHead, closes: closes, context: context)
        case .later(let future, let isHead):
            future.assumeIsolated().whenSuccess { response in
                self.answered(response, isHead: isHead, closes: false, context: context)
            }
        }
    }

    /// The answer under way is ready: writes it as the machine says, then goes on with the requests read.
    private func answered(_ response: GatewayResponse, isHead: Bool, closes: Bool, context: ChannelHandlerContext) {
        let write = machine.answerReady(
            isHead: isHead,
            closesConnection: closes,
            hasUnreadBytes: reader.hasUnreadBytes
        )
        guard let write else { return }
        let now = context.eventLoop.now
        self.write(response, write, now: now, context: context)
        if write.keepAlive {
            perform(timers.activity(at: now), context: context)
            if write.flush { context.flush() }
            takeRequests(context: context)
        }
    }

    // MARK: - Writing

    /// Bodies up to this size are copied after the head rather than written as a buffer of their own.
    private static let bodyBytesCopiedIntoHead = 1024
    /// The largest head buffer a connection keeps between answers (a hit's takes 512 bytes), and over TLS,
    /// where the body is copied after the head, one that holds a typical page too.
    private static let largestSpareHead = 4096
    private static let largestCoalescedSpareHead = 32 * 1024

    /// Writes a whole answer. When the connection closes after it, it closes once the last buffer is
    /// written, as the machine says (``HTTPConnection/StateMachine/lastAnswerWritten()``).
    private func write(
        _ response: GatewayResponse,
        _ write: HTTPConnection.StateMachine.Write,
        now: NIODeadline,
        context: ChannelHandlerContext
    ) {
        let sendsBody = !write.isHead && response.body.readableBytes > 0
        // Small bodies (errors, refusals) go in the head's buffer: one buffer, one iovec.
        let copiesBody =
            sendsBody && (coalescesAnswers || response.body.readableBytes <= Self.bodyBytesCopiedIntoHead)
        // Room for a hit's head as `writeResponseHead` reserves it, so that it is never reallocated.
        let headCapacity = 512 + (copiesBody ? response.body.readableBytes : 0)
        // Taken out of the property, so that `head` is its only reference when cleared.
        var head = spareHead.take() ?? allocator.buffer(capacity: headCapacity)
        head.clear(minimumCapacity: headCapacity)
        let connection: StaticString?
        if !write.keepAlive {
            connection = "Connection: close\r\n"
        } else if write.version.major == 1, write.version.minor == 0 {
            connection = "Connection: keep-alive\r\n"
        } else {
            connection = nil
        }
        head.writeResponseHead(
            version: write.version,
            response: response,
            requestID: recorder.requestID,
            connection: connection
        )
        recorder.finish(response, now: now, client: context.channel.remoteAddress)
        if copiesBody {
            var body = response.body
            head.writeBuffer(&body)
        }
        let written = write.keepAlive ? nil : context.eventLoop.makePromise(of: Void.self)
        if write.keepAlive,
            head.capacity <= (coalescesAnswers ? Self.largestCoalescedSpareHead : Self.largestSpareHead)
        {
            spareHead = head
        }
        if sendsBody, !copiesBody {
            context.write(wrapOutboundOut(head), promise: nil)
            context.write(wrapOutboundOut(response.body), promise: written)
        } else {
            context.write(wrapOutboundOut(head), promise: written)
        }
        guard let written else { return }
        reader.close()
        perform(timers.close(), context: context)
        context.flush()
        written.futureResult.assumeIsolated().whenComplete { _ in
            self.perform(self.machine.lastAnswerWritten(), context: context)
        }
    }

    // MARK: - Timers

    private func perform(_ action: HTTPConnection.TimerStateMachine.Action, context: ChannelHandlerContext) {
        switch action {
        case .none:
            break
        case .arm(let deadline):
            timer?.cancel()
            timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) {
                self.timer = nil
                let action = self.timers.fired(at: context.eventLoop.now, isAnswering: self.machine.isAnswering)
                self.perform(action, context: context)
            }
        case .cancel:
            timer?.cancel()
            timer = nil
        case .close:
            timer = nil
            machine.closed()
            context.close(promise: nil)
        }
    }
}

@available(*, unavailable)
extension HTTPHandler: Sendable {}
