import GatewayCore
import NIOCore

/// Channels subscribed to on a connection of their own (a subscribed connection can send nothing else),
/// made by ``RedisClient/subscribe(to:onMessage:onStateChange:)``.
///
/// When the connection drops, the subscription reports itself down and subscribes again by itself, every
/// ``RedisClient/reconnectInterval`` until it succeeds; then it reports itself up. Messages published
/// while it was down are lost (Redis keeps none): a subscriber re-reads what it watches after coming back
/// up. Cancelled by ``cancel()`` or the client's shutdown; no callback runs after that.
public final class RedisSubscription: Sendable {
    /// The channels subscribed to.
    public let channels: [String]
    /// The loop the connection and every callback run on.
    public let eventLoop: any EventLoop
    private let client: RedisClient
    private let onMessage: @Sendable (String, ByteBuffer) -> Void
    private let onStateChange: @Sendable (Bool) -> Void
    private let box: NIOLoopBoundBox<Subscriber?>
    private let up = Locked(false)

    /// Whether every channel is subscribed to right now.
    public var isSubscribed: Bool { up.withLock { $0 } }

    /// The loop-confined part: the current connection and where the subscription stands.
    private final class Subscriber {
        var handler: RedisConnectionHandler?
        var isUp = false
        var isCancelled = false
        var hasSubscribed = false
        /// Completed by the first attempt: the future ``RedisClient/subscribe(to:onMessage:onStateChange:)``
        /// returns.
        var first: EventLoopPromise<Void>?
        var retry: Scheduled<Void>?
        var keepalive: Scheduled<Void>?
    }

    /// How often a subscribed connection is checked with `PING`: a Redis that hangs without closing the
    /// connection is noticed (the `PING` times out) and reported down.
    static let keepaliveInterval = TimeAmount.seconds(1)

    /// `PING`, which a subscribed connection may send (RESP2 answers it with an array, not a message).
    private static let ping = ByteBuffer(string: "*1\r\n$4\r\nPING\r\n")

    init(
        client: RedisClient,
        channels: [String],
        eventLoop: any EventLoop,
        onMessage: @escaping @Sendable (String, ByteBuffer) -> Void,
        onStateChange: @escaping @Sendable (Bool) -> Void
    ) {
        self.client = client
        self.channels = channels
        self.eventLoop = eventLoop
        self.onMessage = onMessage
        self.onStateChange = onStateChange
        self.box = .makeEmptyBox(valueType: Subscriber.self, eventLoop: eventLoop)
    }

    /// Stops the subscription and closes its connection; no callback runs after the future completes.
    @discardableResult
    public func cancel() -> EventLoopFuture<Void> {
        client.unregister(self)
        return eventLoop.submit {
            // Cancelled before it started: the subscriber left here stops the start.
            let subscriber = self.box.value ?? Subscriber()
            self.box.value = subscriber
            subscriber.isCancelled = true
            subscriber.retry?.cancel()
            subscriber.retry = nil
            subscriber.keepalive?.cancel()
            subscriber.keepalive = nil
            subscriber.first?.fail(RedisError.closed)
            subscriber.first = nil
            subscriber.handler?.shutdown()
            subscriber.handler = nil
            self.up.withLock { $0 = false }
        }
    }

    /// Makes the first attempt; the future succeeds once every channel is subscribed to, or fails with why
    /// the first attempt failed (the subscription is then cancelled). Runs on ``eventLoop``.
    func start() -> EventLoopFuture<Void> {
        if let cancelled = box.value, cancelled.isCancelled { return eventLoop.makeFailedFuture(RedisError.closed) }
        let subscriber = Subscriber()
        let promise = eventLoop.makePromise(of: Void.self)
        subscriber.first = promise
        box.value = subscriber
        attempt(subscriber)
        return promise.futureResult
    }

    private func attempt(_ subscriber: Subscriber) {
        guard !subscriber.isCancelled else { return }
        let handler = client.connect(
            on: eventLoop,
            onPush: { value in
                // A message is [message, channel, payload]; the machine checked the shape.
                guard let elements = value.array, let channel = elements[1].string, let payload = elements[2].bytes
                else { return }
                if !subscriber.isCancelled { self.onMessage(channel, payload) }
            },
            onClose: { error in self.dropped(subscriber, error: error) }
        )
        subscriber.handler = handler
        var confirmations: [EventLoopFuture<RESPValue>] = []
        for channel in channels {
            let promise = eventLoop.makePromise(of: RESPValue.self)
            do {
                handler.send(try RESPCommand.encode(["SUBSCRIBE", .string(channel)]), promise: promise)
            } catch {
                promise.fail(error)
            }
            confirmations.append(promise.futureResult)
        }
        EventLoopFuture.whenAllSucceed(confirmations, on: eventLoop).assumeIsolated().whenComplete { result in
            guard !subscriber.isCancelled, subscriber.handler === handler else { return }
            switch result {
            case .success:
                subscriber.hasSubscribed = true
                // Reported up before the first future completes, so its waiter already sees it.
                self.changed(subscriber, isUp: true)
                subscriber.first?.succeed()
                subscriber.first = nil
                self.scheduleKeepalive(subscriber, handler: handler)
            case .failure(let error):
                self.failFirst(subscriber, error: error)
                // The connection is of no use unsubscribed: closing it retries (or ends a failed first attempt).
                handler.shutdown()
            }
        }
    }

    private func dropped(_ subscriber: Subscriber, error: RedisError) {
        guard !subscriber.isCancelled else { return }
        subscriber.handler = nil
        subscriber.keepalive?.cancel()
        subscriber.keepalive = nil
        changed(subscriber, isUp: false)
        guard subscriber.hasSubscribed else {
            failFirst(subscriber, error: error)
            return
        }
        subscriber.retry = eventLoop.assumeIsolated().scheduleTask(in: client.reconnectInterval) {
            subscriber.retry = nil
            self.attempt(subscriber)
        }
    }

    private func scheduleKeepalive(_ subscriber: Subscriber, handler: RedisConnectionHandler) {
        subscriber.keepalive = eventLoop.assumeIsolated().scheduleTask(in: Self.keepaliveInterval) {
            subscriber.keepalive = nil
            guard !subscriber.isCancelled, subscriber.handler === handler, !handler.isClosed else { return }
            // Its answer does not matter; its timeout closes the connection, which `dropped` handles.
            handler.send(Self.ping, promise: self.eventLoop.makePromise(of: RESPValue.self))
            self.scheduleKeepalive(subscriber, handler: handler)
        }
    }

    /// The first attempt failed: the subscription ends.
    private func failFirst(_ subscriber: Subscriber, error: any Error) {
        guard !subscriber.hasSubscribed, let first = subscriber.first else { return }
        subscriber.first = nil
        subscriber.isCancelled = true
        client.unregister(self)
        first.fail(error)
    }

    private func changed(_ subscriber: Subscriber, isUp: Bool) {
        guard subscriber.isUp != isUp else { return }
        subscriber.isUp = isUp
        up.withLock { $0 = isUp }
        if !subscriber.isCancelled { onStateChange(isUp) }
    }
}

extension RedisClient {
    /// Subscribes to `channels` on a connection of its own, on one of the group's loops. `onMessage` gets
    /// each message published to them (channel, payload); `onStateChange` gets `true` each time every
    /// channel is subscribed to and `false` each time the connection is lost (it re-subscribes by itself).
    /// Both run on the subscription's event loop. The future fails when the first attempt fails.
    public func subscribe(
        to channels: [String],
        onMessage: @escaping @Sendable (String, ByteBuffer) -> Void,
        onStateChange: @escaping @Sendable (Bool) -> Void = { _ in }
    ) -> EventLoopFuture<RedisSubscription> {
        let eventLoop = group.next()
        guard !channels.isEmpty else {
            return eventLoop.makeFailedFuture(RedisError.protocolError("SUBSCRIBE needs at least one channel"))
        }
        let subscription = RedisSubscription(
            client: self,
            channels: channels,
            eventLoop: eventLoop,
            onMessage: onMessage,
            onStateChange: onStateChange
        )
        guard register(subscription) else { return eventLoop.makeFailedFuture(RedisError.closed) }
        return eventLoop.flatSubmit { subscription.start() }.map { subscription }
    }
}
