import NIOCore
import NIOHTTP1

/// ``RequestReader`` as a channel handler that hands on NIO's request parts: a head, its body in parts,
/// and its end, for each request in turn (pipelined requests included), as NIO's `HTTPRequestDecoder`
/// would.
///
/// The gateway's own connections read their requests with a ``RequestReader`` inside ``HTTPHandler``;
/// this handler is for whatever wants the same strict reading behind NIO's types (the fuzz target compares
/// it with NIO's decoder, and the decoder's tests read through it).
///
/// Errors are NIO's `HTTPParserError`s, fired through `errorCaught` as NIO's decoder would; after one,
/// nothing more is read from the connection.
public final class RequestDecoder: ChannelInboundHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = HTTPServerRequestPart

    private var reader: RequestReader
    /// Times heads (not idleness): see ``HTTPConnection/TimerStateMachine``.
    private var timers: HTTPConnection.TimerStateMachine
    private var timer: Scheduled<Void>?

    /// A decoder refusing heads over `maxHeadBytes` or `maxHeaderCount` fields, and closing the connection
    /// when a head takes longer than `headTimeout` from its first byte.
    public init(maxHeadBytes: Int, maxHeaderCount: Int = 256, headTimeout: TimeAmount) {
        reader = RequestReader(maxHeadBytes: maxHeadBytes, maxHeaderCount: maxHeaderCount)
        timers = HTTPConnection.TimerStateMachine(idleTimeout: nil, headTimeout: headTimeout)
    }

    /// The bytes read but not yet used (the start of a request cut off by the end of a read).
    var unread: ByteBuffer? { reader.unread }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        reader.append(unwrapInboundIn(data))
        do {
            // The handler after this one may close the channel while it takes a part; `channelInactive`
            // then closes the reader, which stops reading there.
            while let part = try reader.next() {
                switch part {
                case .request(let head):
                    timers.headCompleted()
                    context.fireChannelRead(wrapInboundOut(.head(head.nioHead)))
                    // Unless the channel closed while the head was taken.
                    if !reader.isClosed { context.fireChannelRead(wrapInboundOut(.end(nil))) }
                case .head(let head):
                    timers.headCompleted()
                    context.fireChannelRead(wrapInboundOut(.head(head.nioHead)))
                case .body(let bytes): context.fireChannelRead(wrapInboundOut(.body(bytes)))
                case .end: context.fireChannelRead(wrapInboundOut(.end(nil)))
                }
            }
        } catch {
            // The reader reads nothing more: no head is timed any longer.
            perform(timers.close(), context: context)
            context.fireErrorCaught(error)
            return
        }
        if reader.isInsideHead, !timers.isTimingHead {
            perform(timers.headBegan(at: context.eventLoop.now), context: context)
        }
    }

    public func channelInactive(context: ChannelHandlerContext) {
        reader.close()
        perform(timers.close(), context: context)
        context.fireChannelInactive()
    }

    private func perform(_ action: HTTPConnection.TimerStateMachine.Action, context: ChannelHandlerContext) {
        switch action {
        case .none:
            break
        case .arm(let deadline):
            timer?.cancel()
            timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) {
                self.timer = nil
                self.perform(self.timers.fired(at: context.eventLoop.now, isAnswering: false), context: context)
            }
        case .cancel:
            timer?.cancel()
            timer = nil
        case .close:
            timer?.cancel()
            timer = nil
            context.close(promise: nil)
        }
    }
}

@available(*, unavailable)
extension RequestDecoder: Sendable {}
