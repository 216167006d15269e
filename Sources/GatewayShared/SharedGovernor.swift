import GatewayCore
import Logging
import NIOCore

/// The upstream governor of every replica together: `UPSTREAM_MAX_CONCURRENCY` requests at once across
/// all of them, as leases in Redis that expire (a replica that dies frees its slots), and one back-off and
/// one learned limit for all (when one replica gets a 429, all back off, for the same time). Each step is
/// one of ``GovernorScripts``, timed by Redis's clock.
///
/// Requests wait in this replica's queue (bounded, first in first out, with the queue timeout, as in
/// ``UpstreamGovernor``); its head tries again when a slot comes free on any replica (announced on a
/// channel) or, should a message be lost, at the slow poll. While Redis fails or times out, or
/// ``SharedTierHealth`` says not to try it, requests go to a governor of this replica alone with the
/// fallback limit: a client never gets an error because Redis is down, only the usual refusals.
public final class SharedGovernor: UpstreamSlots {
    private struct State {
        var machine: StateMachine
        var configuration: UpstreamGovernor.Configuration
        var fallbackMaxConcurrency: Int
        /// Every request not answered yet: trying, queued, or waiting for the fallback governor.
        var waiters: [Int: Waiter] = [:]
        var nextID = 0
        var pollPending = false
        /// Leases whose release Redis did not take (it was down): given back when it answers again.
        var unreleased: [String] = []
        var subscription: Subscription = .none
        var isShutdown = false
    }

    private struct Waiter {
        var promise: EventLoopPromise<Void>
        /// The queue timeout, once the request has joined the queue.
        var timeout: Scheduled<Void>?
    }

    private enum Subscription {
        case none
        case subscribing
        case subscribed(RedisSubscription)
    }

    private let state: Locked<State>
    private let client: RedisClient
    private let fallback: UpstreamGovernor
    private let health: SharedTierHealth
    private let clock: any CacheClock
    private let logger: Logger
    private let keys: [RedisArgument]
    private let leaseMilliseconds: Int
    private let pollInterval: TimeAmount
    /// Makes this replica's lease tokens unlike any other's.
    private let replica = String(UInt64.random(in: 0...UInt64.max), radix: 36)
    /// Where the poll runs.
    private let timerLoop: any EventLoop

    /// The channel a freed slot is announced on.
    public let slotsChannel: String

    /// The governor of the credential tagged `credentialTag` (a short digest of it, never the credential)
    /// under `prefix`, with `configuration`'s limits, taking leases that last `leaseMilliseconds` (longer than any upstream
    /// request may take) and polling every `pollInterval` while requests wait. While Redis is not usable,
    /// it works alone with `fallbackMaxConcurrency` and the same queue and back-off settings. `clock`
    /// times queues locally; every shared expiry is Redis's.
    public init(
        client: RedisClient,
        prefix: String,
        credentialTag: String,
        configuration: UpstreamGovernor.Configuration,
        fallbackMaxConcurrency: Int,
        leaseMilliseconds: Int,
        health: SharedTierHealth,
        pollInterval: TimeAmount = .milliseconds(250),
        clock: any CacheClock = SystemCacheClock(),
        logger: Logger
    ) {
        self.client = client
        // One hash tag per credential, as ``SharedPages`` has it: a cluster keeps the keys in one slot.
        let keyBase = "\(prefix):{\(credentialTag)}:"
        self.keys = [.string(keyBase + "leases"), .string(keyBase + "backoff"), .string(keyBase + "learned")]
        self.slotsChannel = keyBase + "slots"
        self.leaseMilliseconds = max(1, leaseMilliseconds)
        self.pollInterval = pollInterval
        self.health = health
        self.clock = clock
        self.logger = logger
        self.timerLoop = client.group.next()
        self.fallback = UpstreamGovernor(
            configuration: Self.fallbackConfiguration(configuration, maxConcurrency: fallbackMaxConcurrency),
            clock: clock
        )
        self.state = Locked(
            State(
                machine: StateMachine(maxQueue: configuration.maxQueue, limit: configuration.maxConcurrency),
                configuration: configuration,
                fallbackMaxConcurrency: fallbackMaxConcurrency
            )
        )
        subscribe()
    }

    /// Applies new limits (a configuration reload), to the shared governor and the fallback one; requests in
    /// flight keep their slots, and waiters are let through at once if the new limit allows.
    public func update(_ configuration: UpstreamGovernor.Configuration) {
        update(configuration, fallbackMaxConcurrency: nil)
    }

    /// Applies new limits, and a new fallback limit (`nil`: unchanged).
    public func update(_ configuration: UpstreamGovernor.Configuration, fallbackMaxConcurrency: Int?) {
        let fallbackConfiguration = state.withLock { state in
            state.configuration = configuration
            state.fallbackMaxConcurrency = fallbackMaxConcurrency ?? state.fallbackMaxConcurrency
            state.machine.configure(maxConcurrency: configuration.maxConcurrency, maxQueue: configuration.maxQueue)
            return Self.fallbackConfiguration(configuration, maxConcurrency: state.fallbackMaxConcurrency)
        }
        fallback.update(fallbackConfiguration)
        wake()
    }

    /// Waits for a slot: a lease every replica counts, or, while Redis is not usable, a slot of this
    /// replica's fallback governor. Fails only with ``UpstreamGovernor/Rejection``.
    public func acquire(on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        let now = clock.nowNanoseconds()
        let promise = eventLoop.makePromise(of: Void.self)
        let (id, action) = state.withLock { state in
            let id = state.nextID
            state.nextID += 1
            let action = state.machine.acquire(id, now: now)
            if action == .attempt || action == .queued { state.waiters[id] = Waiter(promise: promise) }
            return (id, action)
        }
        switch action {
        case .attempt:
            attempt(id, on: eventLoop)
        case .queued:
            startTimeout(id, on: eventLoop)
            schedulePoll()
        case .rejectedQueueFull:
            promise.fail(UpstreamGovernor.Rejection.queueFull)
        case .rejectedBackoff(let until):
            promise.fail(UpstreamGovernor.Rejection.backingOff(secondsLeft: Self.secondsLeft(until: until, now: now)))
        }
        return promise.futureResult
    }

    /// Gives a slot back with what its request came to: a lease (Redis learns from a 429 for every
    /// replica) or a fallback slot.
    public func release(_ outcome: UpstreamGovernor.Outcome) {
        let sharedTierUp = health.isUp
        switch state.withLock({ $0.machine.slotToRelease(sharedTierUp: sharedTierUp) }) {
        case .lease(let token):
            give(token, outcome: outcome)
        case .fallback:
            fallback.release(outcome)
            // The request's answer still tells every replica of a 429 (or ends the streak of 429s).
            if sharedTierUp, outcome != .other { give(nil, outcome: outcome) }
        case .none:
            break
        }
    }

    /// In flight on this replica (leases and fallback slots), queued here, and the limit and back-off in
    /// force: the shared ones as Redis last said, or the fallback governor's while the shared tier is down.
    public var snapshot: UpstreamGovernor.Snapshot {
        let now = clock.nowNanoseconds()
        let alone = fallback.snapshot
        let sharedTierUp = health.isUp
        return state.withLock { state in
            UpstreamGovernor.Snapshot(
                inFlight: state.machine.leases.count + alone.inFlight,
                queued: state.machine.queue.count + alone.queued,
                limit: sharedTierUp ? state.machine.limit : alone.limit,
                backoffSecondsLeft: max(
                    Self.secondsLeft(until: state.machine.backoffUntil, now: now),
                    alone.backoffSecondsLeft
                )
            )
        }
    }

    /// Stops listening for freed slots and polling; requests still queued wait out their queue timeout.
    public func shutdown() {
        let subscription = state.withLock { state -> RedisSubscription? in
            state.isShutdown = true
            defer { state.subscription = .none }
            if case .subscribed(let subscription) = state.subscription { return subscription }
            return nil
        }
        subscription?.cancel()
    }

    /// Whether this replica hears freed slots announced right now (for tests).
    var isListening: Bool {
        state.withLock { state in
            if case .subscribed(let subscription) = state.subscription { return subscription.isSubscribed }
            return false
        }
    }

    /// Leases to give back once Redis answers again (for tests).
    var unreleasedLeases: Int { state.withLock { $0.unreleased.count } }

    // MARK: - Redis

    /// Runs the acquire script for request `id`, on `eventLoop`.
    private func attempt(_ id: Int, on eventLoop: any EventLoop) {
        guard health.shouldTry() else {
            perform(state.withLock { $0.machine.failed(id) })
            return
        }
        let token = "\(replica)-\(id)"
        let configured = state.withLock { $0.configuration.maxConcurrency }
        client.evaluate(
            GovernorScripts.acquire,
            keys: keys,
            arguments: [.string(token), .integer(leaseMilliseconds), .integer(max(1, configured))],
            on: eventLoop
        ).flatMapThrowing { reply in
            try GovernorScripts.AcquireReply(reply)
        }.whenComplete { result in
            switch result {
            case .success(let reply):
                // Up before anything else is tried, so that the next try is not taken for a probe.
                self.health.succeeded()
                let now = self.clock.nowNanoseconds()
                self.perform(self.state.withLock { $0.machine.answered(id, reply, token: token, now: now) })
                self.redisAnswered()
            case .failure(let error):
                self.health.failed(error)
                self.logger.debug("shared governor: acquire failed, working alone", metadata: ["error": "\(error)"])
                self.perform(self.state.withLock { $0.machine.failed(id) })
            }
        }
    }

    /// Gives lease `token` back after `outcome` (`nil`: only tells Redis the outcome). When Redis cannot
    /// take it, it is given back once Redis answers again, or expires by itself before that.
    private func give(_ token: String?, outcome: UpstreamGovernor.Outcome) {
        let eventLoop = client.group.any()
        guard health.shouldTry() else {
            // Redis cannot be told of a 429: this replica at least backs off on its own.
            if case .rateLimited = outcome { fallback.learn(outcome) }
            let now = clock.nowNanoseconds()
            perform(
                state.withLock { state in
                    if let token { state.unreleased.append(token) }
                    return state.machine.released(nil, now: now)
                }
            )
            return
        }
        let configuration = state.withLock { $0.configuration }
        client.evaluate(
            GovernorScripts.release,
            keys: keys,
            arguments: GovernorScripts.releaseArguments(
                token: token ?? "",
                outcome: outcome,
                configuration: configuration,
                channel: slotsChannel
            ),
            on: eventLoop
        ).flatMapThrowing { reply in
            try GovernorScripts.ReleaseReply(reply)
        }.whenComplete { result in
            let now = self.clock.nowNanoseconds()
            switch result {
            case .success(let reply):
                // Up before anything else is tried, so that the next try is not taken for a probe.
                self.health.succeeded()
                self.perform(self.state.withLock { $0.machine.released(reply, now: now) })
                self.redisAnswered()
            case .failure(let error):
                self.health.failed(error)
                self.logger.debug("shared governor: release failed", metadata: ["error": "\(error)"])
                if case .rateLimited = outcome { self.fallback.learn(outcome) }
                self.perform(
                    self.state.withLock { state in
                        if let token { state.unreleased.append(token) }
                        return state.machine.released(nil, now: now)
                    }
                )
            }
        }
    }

    /// Redis answered: leases it could not take before are given back, and this replica listens for freed
    /// slots if it does not yet.
    private func redisAnswered() {
        let unreleased = state.withLock { state in
            defer { state.unreleased = [] }
            return state.unreleased
        }
        for token in unreleased { give(token, outcome: .other) }
        subscribe()
    }

    /// Listens for freed slots, unless it already does (or is about to). Called again after each answer
    /// from Redis, so a subscription whose first attempt failed (Redis was down) is made once Redis is back;
    /// after that, the subscription reconnects by itself.
    private func subscribe() {
        let start = state.withLock { state -> Bool in
            guard !state.isShutdown, case .none = state.subscription else { return false }
            state.subscription = .subscribing
            return true
        }
        guard start else { return }
        client.subscribe(
            to: [slotsChannel],
            onMessage: { [weak self] _, _ in self?.wake() },
            // Messages sent while it was down are lost: the head tries again now.
            onStateChange: { [weak self] isUp in if isUp { self?.wake() } }
        ).whenComplete { result in
            let unwanted = self.state.withLock { state -> RedisSubscription? in
                switch result {
                case .success(let subscription):
                    guard !state.isShutdown else { return subscription }
                    state.subscription = .subscribed(subscription)
                    return nil
                case .failure:
                    state.subscription = .none
                    return nil
                }
            }
            unwanted?.cancel()
        }
    }

    // MARK: - Waking, timing, acting

    /// A slot may have come free: the queue's head tries.
    private func wake() {
        perform(state.withLock { $0.machine.wake() })
    }

    /// Polls while requests wait, for announcements that were lost (or a replica that died holding leases).
    private func schedulePoll() {
        let due = state.withLock { state -> Bool in
            guard !state.isShutdown, !state.pollPending, !state.machine.queue.isEmpty else { return false }
            state.pollPending = true
            return true
        }
        guard due else { return }
        timerLoop.scheduleTask(in: pollInterval) { [weak self] in
            guard let self else { return }
            self.state.withLock { $0.pollPending = false }
            self.wake()
            self.schedulePoll()
        }
    }

    private func startTimeout(_ id: Int, on eventLoop: any EventLoop) {
        let queueTimeout = state.withLock { $0.configuration.queueTimeout }
        let timeout = eventLoop.scheduleTask(in: queueTimeout) { [weak self] in
            guard let self else { return }
            self.timedOut(id)
        }
        let stillWaiting = state.withLock { state in
            guard state.waiters[id] != nil else { return false }
            state.waiters[id]?.timeout = timeout
            return true
        }
        if !stillWaiting { timeout.cancel() }
    }

    /// `id` waited its queue timeout: refused, whether it was in this queue or the fallback governor's (a
    /// slot that governor gives it later is given back at once).
    private func timedOut(_ id: Int) {
        let waiter = state.withLock { state -> Waiter? in
            _ = state.machine.cancel(id)
            return state.waiters.removeValue(forKey: id)
        }
        waiter?.promise.fail(UpstreamGovernor.Rejection.queueTimeout)
    }

    /// Does what the state machine asked for.
    private func perform(_ actions: StateMachine.Actions) {
        let now = clock.nowNanoseconds()
        let (granted, full, backedOff, alone, queued, attempt) = state.withLock { state in
            let granted = actions.granted.compactMap { state.waiters.removeValue(forKey: $0) }
            let full = actions.rejectedQueueFull.compactMap { state.waiters.removeValue(forKey: $0) }
            let backedOff = actions.rejectedBackoff.compactMap { state.waiters.removeValue(forKey: $0) }
            // Those going to the fallback governor stay waiters (their queue timeout still runs).
            let alone = actions.fallback.compactMap { id in state.waiters[id].map { (id, $0.promise) } }
            let queued = actions.queued.compactMap { id in state.waiters[id].map { (id, $0.promise) } }
            let attempt = actions.attempt.flatMap { id in state.waiters[id].map { (id, $0.promise) } }
            return (granted, full, backedOff, alone, queued, attempt)
        }
        for waiter in granted {
            waiter.timeout?.cancel()
            waiter.promise.succeed()
        }
        for waiter in full {
            waiter.timeout?.cancel()
            waiter.promise.fail(UpstreamGovernor.Rejection.queueFull)
        }
        let secondsLeft = Self.secondsLeft(until: actions.backoffUntil, now: now)
        for waiter in backedOff {
            waiter.timeout?.cancel()
            waiter.promise.fail(UpstreamGovernor.Rejection.backingOff(secondsLeft: secondsLeft))
        }
        for (id, promise) in alone {
            fallback.acquire(on: promise.futureResult.eventLoop).whenComplete { result in
                self.fallbackAnswered(id, result)
            }
        }
        for (id, promise) in queued {
            startTimeout(id, on: promise.futureResult.eventLoop)
        }
        if !queued.isEmpty { schedulePoll() }
        if let token = actions.orphanedLease { give(token, outcome: .other) }
        if let (id, promise) = attempt { self.attempt(id, on: promise.futureResult.eventLoop) }
    }

    private func fallbackAnswered(_ id: Int, _ result: Result<Void, any Error>) {
        let waiter = state.withLock { state -> Waiter? in
            guard let waiter = state.waiters.removeValue(forKey: id) else { return nil }
            if case .success = result { state.machine.fallbackGranted() }
            return waiter
        }
        guard let waiter else {
            // Timed out here first: the slot goes back.
            if case .success = result { fallback.release(.other) }
            return
        }
        waiter.timeout?.cancel()
        waiter.promise.completeWith(result)
    }

    private static func fallbackConfiguration(
        _ configuration: UpstreamGovernor.Configuration,
        maxConcurrency: Int
    ) -> UpstreamGovernor.Configuration {
        var alone = configuration
        alone.maxConcurrency = max(1, maxConcurrency)
        return alone
    }

    private static func secondsLeft(until: UInt64, now: UInt64) -> Int {
        guard until > now else { return 0 }
        return Int((until - now + 999_999_999) / 1_000_000_000)
    }
}
