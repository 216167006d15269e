import NIOCore

/// Bounds the time a request head may take to arrive, from its first byte: a client that sends a head a
/// byte at a time is closed after `timeout`, however often it sends. (The idle timeout bounds the wait
/// before the first byte.)
///
/// ``RequestReader`` says when a read ends inside a head (the read that brought its first bytes, then
/// each one after) and when the head is complete, so a head that starts in the same read as the request
/// before it is timed from its first byte too. A head that arrives whole in one read is never timed. (A
/// head pipelined behind an answer still being prepared is timed from when the reader gets to it: the
/// socket is not read meanwhile, so it cannot grow while it waits.) Loop-confined.
final class RequestHeadTimer {
    private let timeout: TimeAmount
    /// At most one check is scheduled at a time; see ``headBegan(context:)``.
    private var timer: Scheduled<Void>?
    /// When the first byte of the head being received arrived; `nil` while no head is under way.
    private var headStarted: NIODeadline?

    init(timeout: TimeAmount) { self.timeout = timeout }

    /// A read ended inside a head (again and again while it is under way: only the first call counts).
    /// Each head only notes when it began: scheduling and cancelling a timer per request would cost a
    /// tenth of a cache hit. The one check, when it finds the head it was armed for done, is armed again
    /// for whichever head is under way then.
    func headBegan(context: ChannelHandlerContext) {
        guard headStarted == nil else { return }
        headStarted = context.eventLoop.now
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
        headStarted = nil
    }

    /// The connection closed: nothing more to check.
    func cancel() {
        timer?.cancel()
        timer = nil
        headStarted = nil
    }
}

@available(*, unavailable)
extension RequestHeadTimer: Sendable {}
