import NIOCore

/// Bounds the time a request head may take to arrive, from its first byte: a client that sends a head a
/// byte at a time is closed after `timeout`, however often it sends. (The idle timeout bounds the wait
/// before the first byte.)
///
/// Two handlers share it: ``Observer``, in front of the HTTP decoder, sees bytes arrive; ``HTTPHandler``
/// says when it waits for a head and when one is complete. Loop-confined.
final class RequestHeadTimer {
    private let timeout: TimeAmount
    private var timer: Scheduled<Void>?
    /// Whether the connection is between requests (so arriving bytes start a head).
    var waitingForHead = true

    init(timeout: TimeAmount) { self.timeout = timeout }

    /// Bytes arrived.
    func bytesArrived(context: ChannelHandlerContext) {
        guard waitingForHead, timer == nil else { return }
        timer = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) {
            context.close(promise: nil)
        }
    }

    /// A whole head arrived.
    func headCompleted() {
        waitingForHead = false
        timer?.cancel()
        timer = nil
    }

    /// The answer is written; the next bytes start the next head.
    func awaitNextHead() {
        waitingForHead = true
    }

    /// Sits in front of the HTTP decoder and reports arriving bytes.
    final class Observer: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias InboundOut = ByteBuffer

        private let timer: RequestHeadTimer

        init(_ timer: RequestHeadTimer) { self.timer = timer }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            timer.bytesArrived(context: context)
            context.fireChannelRead(data)
        }
    }
}

@available(*, unavailable)
extension RequestHeadTimer: Sendable {}

@available(*, unavailable)
extension RequestHeadTimer.Observer: Sendable {}
