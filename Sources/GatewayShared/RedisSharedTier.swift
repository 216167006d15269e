import GatewayCore
import Logging
import NIOCore
import NIOPosix

/// The shared tier over Redis, as the request path uses it (``SharedTier``): pages and flights
/// (``SharedPages``), team budgets, and invalidations, with every Redis result reported to one
/// ``SharedTierHealth``: while Redis is down, every method answers "alone" at once without asking it (one
/// probe at a time tries it again).
///
/// One subscription per replica carries two channels: finished flights wake this replica's followers of
/// that question (which then read the result), and invalidations from other replicas clear this
/// replica's first tier through `onInvalidation`. A follower also polls slowly, in case a message is lost.
public final class RedisSharedTier: SharedTier {
    public let health: SharedTierHealth
    private let client: RedisClient
    private let pages: SharedPages
    private let pollInterval: TimeAmount
    private let onInvalidation: @Sendable (String?) -> Void
    private let logger: Logger
    /// This process's part of every lock token, so replicas never take each other's tokens.
    private let tokenPrefix: String
    private let state = Locked(State())

    private struct State {
        var nextToken = 0
        /// Followers waiting on this replica, by question.
        var waiters: [String: [ObjectIdentifier: Waiter]] = [:]
        var subscription: RedisSubscription?
        var isShutdown = false
    }

    /// One follower: answered once, by the leader's result, its deadline, or a failure; confined to its loop.
    private final class Waiter: @unchecked Sendable {
        let key: CacheKey
        let eventLoop: any EventLoop
        let promise: EventLoopPromise<SharedOutcome?>
        var done = false
        var reading = false
        /// A message came while a read was under way (which may have missed the result): read again.
        var readAgain = false
        var deadline: Scheduled<Void>?
        var poll: RepeatedTask?

        init(key: CacheKey, eventLoop: any EventLoop) {
            self.key = key
            self.eventLoop = eventLoop
            self.promise = eventLoop.makePromise(of: SharedOutcome?.self)
        }
    }

    /// The shared tier of the credential tagged `credentialTag` under `prefix`, over `client`. A leader's
    /// lock lasts `lockMilliseconds` (longer than a queued upstream request can take); followers read the
    /// result at least every `pollInterval`; `onInvalidation` clears this replica's first tier when another
    /// replica invalidates.
    public init(
        client: RedisClient,
        prefix: String,
        credentialTag: String,
        health: SharedTierHealth,
        lockMilliseconds: Int,
        pollInterval: TimeAmount = .milliseconds(500),
        logger: Logger,
        onInvalidation: @escaping @Sendable (String?) -> Void
    ) {
        self.client = client
        self.health = health
        self.pages = SharedPages(
            client: client,
            prefix: prefix,
            credentialTag: credentialTag,
            lockMilliseconds: lockMilliseconds,
            resultMilliseconds: max(5_000, lockMilliseconds)
        )
        self.pollInterval = pollInterval
        self.logger = logger
        self.onInvalidation = onInvalidation
        self.tokenPrefix = String(UInt64.random(in: 1...UInt64.max), radix: 36)
    }

    /// Subscribes to the flights and invalidations channels. Does not wait for Redis: while it cannot be
    /// reached, the subscription keeps trying by itself.
    public func start() {
        let flights = pages.flightsChannel
        client.subscribe(
            to: [flights, pages.invalidationsChannel],
            onMessage: { [weak self] channel, message in
                guard let self else { return }
                let text = String(buffer: message)
                if channel == flights {
                    self.wake(query: text)
                } else {
                    self.onInvalidation(text.isEmpty ? nil : text)
                }
            },
            onStateChange: { [weak self] isUp in
                guard let self, isUp else { return }
                // Messages sent while the subscription was down are lost: every follower reads again. And
                // Redis is back: the tier need not wait for a request to find out.
                self.wakeAll()
                self.probe()
            }
        ).whenComplete { [weak self] result in
            guard let self else { return }
            switch result {
            case .success(let subscription):
                let cancel = self.state.withLock { state -> Bool in
                    if state.isShutdown { return true }
                    state.subscription = subscription
                    return false
                }
                if cancel { _ = subscription.cancel() }
            case .failure(let error):
                self.logger.warning("shared tier: cannot subscribe", metadata: ["error": "\(error)"])
            }
        }
    }

    /// Stops waking followers (each still waiting is answered `nil`) and cancels the subscription; the client
    /// is the caller's to shut down.
    public func shutdown() async {
        let (subscription, waiters) = state.withLock { state in
            state.isShutdown = true
            defer {
                state.subscription = nil
                state.waiters = [:]
            }
            return (state.subscription, state.waiters.values.flatMap { $0.values })
        }
        for waiter in waiters {
            waiter.eventLoop.execute { self.answer(waiter, with: nil) }
        }
        if let subscription { try? await subscription.cancel().get() }
    }

    public var isUp: Bool { health.isUp }

    /// Asks Redis whether it answers, when the health wants a probe.
    private func probe() {
        guard !health.isUp, health.shouldTry() else { return }
        _ = reported(client.send(["PING"], on: client.group.any()))
    }

    // MARK: - SharedTier

    public func enter(
        _ key: CacheKey,
        freshMilliseconds: Int,
        on eventLoop: any EventLoop
    ) -> EventLoopFuture<SharedEntry> {
        guard health.shouldTry() else { return eventLoop.makeSucceededFuture(.alone) }
        let token = state.withLock { state -> String in
            state.nextToken += 1
            return "\(tokenPrefix)-\(state.nextToken)"
        }
        return reported(pages.enter(key, token: token, freshMilliseconds: freshMilliseconds, on: eventLoop)).map {
            entry -> SharedEntry in
            switch entry {
            case .page(let body, let contentType, let age)?:
                return .page(SharedPage(body: body, contentType: contentType, ageMilliseconds: age))
            case .lead(let flight)?:
                return .lead(flight)
            case .follow(let left)?:
                return .follow(lockLeft: .milliseconds(Int64(left)))
            case nil:
                return .alone
            }
        }
    }

    public func outcome(
        of key: CacheKey,
        within limit: TimeAmount,
        on eventLoop: any EventLoop
    ) -> EventLoopFuture<SharedOutcome?> {
        let waiter = Waiter(key: key, eventLoop: eventLoop)
        let registered = state.withLock { state -> Bool in
            guard !state.isShutdown else { return false }
            state.waiters[key.query, default: [:]][ObjectIdentifier(waiter)] = waiter
            return true
        }
        guard registered else { return eventLoop.makeSucceededFuture(nil) }
        eventLoop.execute {
            waiter.deadline = eventLoop.scheduleTask(in: limit) { self.answer(waiter, with: nil) }
            waiter.poll = eventLoop.scheduleRepeatedTask(initialDelay: self.pollInterval, delay: self.pollInterval) {
                _ in self.read(waiter)
            }
            // The leader may have finished between the entry and now.
            self.read(waiter)
        }
        return waiter.promise.futureResult
    }

    public func finish(
        _ flight: SharedFlight,
        status: Int,
        body: ByteBuffer,
        contentType: String,
        lifeMilliseconds: Int,
        on eventLoop: any EventLoop
    ) -> EventLoopFuture<Void> {
        // Always tried, even while down: followers on other replicas wait for it.
        reported(
            pages.finish(
                flight,
                status: status,
                body: body,
                contentType: contentType,
                lifeMilliseconds: lifeMilliseconds,
                on: eventLoop
            )
        ).map { _ in () }
    }

    public func abandon(_ flight: SharedFlight, on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        reported(pages.abandon(flight, on: eventLoop)).map { _ in () }
    }

    public func spend(team: String, perMinute: Int, on eventLoop: any EventLoop) -> EventLoopFuture<SharedBudget?> {
        guard perMinute > 0 else {
            return eventLoop.makeSucceededFuture(SharedBudget(decision: .denied(retryAfterSeconds: 60), tokensLeft: 0))
        }
        guard health.shouldTry() else { return eventLoop.makeSucceededFuture(nil) }
        return reported(pages.spend(team: team, perMinute: perMinute, on: eventLoop))
    }

    public func invalidate(agent: String?) -> EventLoopFuture<Void> {
        let eventLoop = client.group.any()
        return pages.invalidate(agent: agent, on: eventLoop).always { result in
            switch result {
            case .success: self.health.succeeded()
            case .failure(let error): self.health.failed(error)
            }
        }
    }

    // MARK: - Followers

    /// `future`'s value, or `nil` when it failed; either way reported to the health.
    private func reported<Value>(_ future: EventLoopFuture<Value>) -> EventLoopFuture<Value?> {
        future.map { value -> Value? in
            self.health.succeeded()
            return value
        }.recover { error in
            self.health.failed(error)
            return nil
        }
    }

    /// Reads `waiter`'s result (on its loop) and answers it when there is one.
    private func read(_ waiter: Waiter) {
        guard !waiter.done else { return }
        guard !waiter.reading else {
            waiter.readAgain = true
            return
        }
        waiter.reading = true
        waiter.readAgain = false
        reported(pages.result(for: waiter.key, on: waiter.eventLoop)).whenComplete { result in
            waiter.reading = false
            defer { if waiter.readAgain { self.read(waiter) } }
            switch result {
            case .success(.some(.some(.page(let body, let contentType, let age)))):
                self.answer(waiter, with: .page(SharedPage(body: body, contentType: contentType, ageMilliseconds: age)))
            case .success(.some(.some(.answer(let status, let contentType, let body)))):
                // Status 0: the leader gave up without asking; the follower tries again (as if nothing came).
                self.answer(
                    waiter,
                    with: status == 0 ? nil : .answer(status: status, contentType: contentType, body: body)
                )
            case .success(.some(.none)):
                break  // not finished yet
            case .success(.none), .failure:
                self.answer(waiter, with: nil)  // Redis failed: work alone
            }
        }
    }

    private func answer(_ waiter: Waiter, with outcome: SharedOutcome?) {
        guard !waiter.done else { return }
        waiter.done = true
        waiter.deadline?.cancel()
        waiter.poll?.cancel()
        state.withLock { state in
            let query = waiter.key.query
            state.waiters[query]?.removeValue(forKey: ObjectIdentifier(waiter))
            if state.waiters[query]?.isEmpty == true { state.waiters.removeValue(forKey: query) }
        }
        waiter.promise.succeed(outcome)
    }

    private func wake(query: String) {
        let waiters = state.withLock { $0.waiters[query].map { Array($0.values) } ?? [] }
        for waiter in waiters {
            waiter.eventLoop.execute { self.read(waiter) }
        }
    }

    private func wakeAll() {
        let waiters = state.withLock { $0.waiters.values.flatMap { $0.values } }
        for waiter in waiters {
            waiter.eventLoop.execute { self.read(waiter) }
        }
    }
}
