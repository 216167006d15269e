import NIOCore

/// The connection of one event loop for a ``RedisClient``: the current connection, and when the last
/// attempt to make one began. Confined to its loop.
final class RedisConnectionSlot {
    private var handler: RedisConnectionHandler?
    private var lastAttempt: NIODeadline?
    private var isShutdown = false

    /// The connection to send on at `now`: the open one, or a new one from `connect` unless the last
    /// attempt began less than `interval` ago (then why the last one failed).
    func connection(
        now: NIODeadline,
        interval: TimeAmount,
        connect: () -> RedisConnectionHandler
    ) -> Result<RedisConnectionHandler, RedisError> {
        guard !isShutdown else { return .failure(.closed) }
        if let handler, !handler.isClosed { return .success(handler) }
        if let lastAttempt, now < lastAttempt + interval {
            let reason = handler?.closeReason.map { "\($0)" } ?? "not connected"
            let wait = (lastAttempt + interval - now).nanoseconds / 1_000_000
            return .failure(.connectionFailed("\(reason); next attempt in \(wait) ms"))
        }
        lastAttempt = now
        let handler = connect()
        self.handler = handler
        return .success(handler)
    }

    /// Closes the connection for good.
    func shutdown() {
        isShutdown = true
        handler?.shutdown()
        handler = nil
    }
}

@available(*, unavailable)
extension RedisConnectionSlot: Sendable {}
