import NIOCore

/// Bounds the time a request head may take to arrive, from its first byte: a client that sends a head a
/// byte at a time is closed after `timeout`, however often it sends. (The idle timeout bounds the wait
/// before the first byte.)
///
/// Two handlers share it: ``Observer``, in front of the HTTP decoder, sees bytes arrive; ``HTTPHandler``
/// says when it waits for a head and when one is complete. Loop-confined.
final class RequestHeadTimer {
    private let timeout: TimeAmount
    /// At most one check is scheduled at a time; see ``bytesArrived(context:)``.
    private var timer: Scheduled<Void>?
    /// When the first byte of the head being received arrived; `nil` while no head is under way.
    private var headStarted: NIODeadline?
    /// Whether the connection is between requests (so arriving bytes start a head).
    var waitingForHead = true

    init(timeout: TimeAmount) { self.timeout = timeout }

    /// Bytes arrived. Each head only notes when it began: scheduling and cancelling a timer per request
    /// would cost a tenth of a cache hit. The one check, when it finds the head it was armed for done, is
    /// armed again for whichever head is under way then.
    func bytesArrived(context: ChannelHandlerContext) {
        guard waitingForHead, headStarted == nil else { return }
        let now = context.eventLoop.now
        headStarted = now
        if timer == nil { scheduleCheck(in: timeout, context: context) }
    }

    private func scheduleCheck(in delay: TimeAmount, context: ChannelHandlerContext) {
        timer = context.eventLoop.assumeIsolated().scheduleTask(in: delay) {
            self.timer = nil
            guard let started = self.headStarted else { return }
            let deadline = started + self.timeout
            let now = context.eventLoop.now
            if now >= deadline {
                context.close(promise: nil)
            } else {
                self.scheduleCheck(in: deadline - now, context: context)
            }
        }
    }

    /// A whole head arrived.
    func headCompleted() {
        waitingForHead = false
        headStarted = nil
    }

    /// The answer is written; the next bytes start the next head.
    func awaitNextHead() {
        waitingForHead = true
    }

    /// The connection closed: nothing more to check.
    func cancel() {
        timer?.cancel()
        timer = nil
        headStarted = nil
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
