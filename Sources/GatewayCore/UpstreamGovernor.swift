import NIOCore
import NIOHTTP1
import Synchronization

/// Keeps the shared key inside the upstream's limits: at most a set number of upstream requests at once
/// (fewer once the upstream says its own maximum), a bounded first-in-first-out queue for the rest, and a
/// back-off for the whole key after any 429. Cache hits never come here.
public final class UpstreamGovernor: Sendable {
    /// The limits.
    public struct Configuration: Sendable {
        /// The most upstream requests in flight at once.
        public var maxConcurrency: Int
        /// The most requests waiting for a slot; more are refused at once.
        public var maxQueue: Int
        /// How long a request may wait for a slot.
        public var queueTimeout: TimeAmount
        /// The longest back-off after repeated 429s without `Retry-After`.
        public var backoffMaxSeconds: Int

        /// Creates limits.
        public init(maxConcurrency: Int, maxQueue: Int, queueTimeout: TimeAmount, backoffMaxSeconds: Int) {
            self.maxConcurrency = maxConcurrency
            self.maxQueue = maxQueue
            self.queueTimeout = queueTimeout
            self.backoffMaxSeconds = backoffMaxSeconds
        }
    }

    /// Why no slot was given.
    public enum Rejection: Error, Hashable, Sendable {
        /// The queue is full.
        case queueFull
        /// No slot came free in time.
        case queueTimeout
        /// The key is backing off after a 429, for this many more seconds (rounded up).
        case backingOff(secondsLeft: Int)
    }

    /// The state, for monitoring and tests.
    public struct Snapshot: Sendable, Hashable {
        /// Upstream requests holding a slot.
        public var inFlight: Int
        /// Requests waiting for a slot.
        public var queued: Int
        /// The concurrency limit in force (the configured one, or the upstream's own if lower).
        public var limit: Int
        /// Seconds of back-off left (rounded up); 0 when not backing off.
        public var backoffSecondsLeft: Int

        /// A state (for other ``UpstreamSlots``).
        public init(inFlight: Int, queued: Int, limit: Int, backoffSecondsLeft: Int) {
            self.inFlight = inFlight
            self.queued = queued
            self.limit = limit
            self.backoffSecondsLeft = backoffSecondsLeft
        }
    }

    /// How an upstream request that held a slot ended.
    public enum Outcome: Equatable, Sendable {
        /// A 2xx or 3xx: the upstream is well; back-off resets.
        case success
        /// A 429, with what its headers said.
        case rateLimited(retryAfterSeconds: Int?, maximumConcurrent: Int?)
        /// Anything else (errors, other statuses): changes nothing.
        case other

        /// How the exchange that produced `result` ended, read from the upstream's answer: its status and,
        /// for a 429, its `Retry-After` (`now`: seconds since 1970, for a date) and
        /// `maximum-concurrent-requests`.
        public init(_ result: Result<UpstreamResponse, any Error>, now: Int) {
            guard case .success(let response) = result else {
                self = .other
                return
            }
            switch response.status {
            case 200..<400:
                self = .success
            case 429:
                let retryAfter = response.headers.first(name: "retry-after").flatMap {
                    RetryAfter.seconds(from: $0, now: now)
                }
                let maximum = response.headers.first(name: "maximum-concurrent-requests").flatMap {
                    $0.split(separator: " ").first.flatMap { Int($0) }
                }
                self = .rateLimited(retryAfterSeconds: retryAfter, maximumConcurrent: maximum)
            default:
                self = .other
            }
        }
    }

    /// After this many successes in a row, a limit learned from a 429 is raised by one, up to the configured one.
    public static var successesToRaiseLimit: Int { StateMachine.successesToRaiseLimit }

    /// A `Retry-After` longer than this many seconds is treated as this many.
    public static var longestRetryAfterSeconds: Int { StateMachine.longestRetryAfterSeconds }

    private struct State {
        var machine: StateMachine
        var queueTimeout: TimeAmount
        var waiters: [Int: Waiter] = [:]
        var nextID = 0
    }

    private struct Waiter {
        var promise: EventLoopPromise<Void>
        var timeout: Scheduled<Void>?
    }

    private let state: Locked<State>
    private let clock: any CacheClock

    /// Creates a governor; `clock` times the back-off.
    public init(configuration: Configuration, clock: any CacheClock = SystemCacheClock()) {
        let settings = StateMachine.Settings(
            maxConcurrency: max(1, configuration.maxConcurrency),
            maxQueue: max(0, configuration.maxQueue),
            backoffMaxNanoseconds: UInt64(max(1, configuration.backoffMaxSeconds)) * 1_000_000_000
        )
        self.state = Locked(State(machine: StateMachine(settings: settings), queueTimeout: configuration.queueTimeout))
        self.clock = clock
    }

    /// Applies new limits (a configuration reload): requests in flight keep their slots, waiters are let
    /// through at once if the new limit allows. The queue timeout applies to requests queued from now on.
    public func update(_ configuration: Configuration) {
        let now = clock.nowNanoseconds()
        let granted = state.withLock { state in
            state.machine.settings = StateMachine.Settings(
                maxConcurrency: max(1, configuration.maxConcurrency),
                maxQueue: max(0, configuration.maxQueue),
                backoffMaxNanoseconds: UInt64(max(1, configuration.backoffMaxSeconds)) * 1_000_000_000
            )
            state.queueTimeout = configuration.queueTimeout
            let wakeups = state.machine.wakeups(now: now)
            return wakeups.granted.compactMap { state.waiters.removeValue(forKey: $0) }
        }
        for waiter in granted {
            waiter.timeout?.cancel()
            waiter.promise.succeed()
        }
    }

    /// Waits for a slot. The future succeeds on `eventLoop` once the caller holds one (and must then call
    /// ``release(_:)`` exactly once), or fails with a ``Rejection``.
    public func acquire(on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        let now = clock.nowNanoseconds()
        let promise = eventLoop.makePromise(of: Void.self)
        let (action, id, queueTimeout) = state.withLock { state in
            let id = state.nextID
            state.nextID += 1
            let action = state.machine.acquire(id, now: now)
            if action == .queued { state.waiters[id] = Waiter(promise: promise, timeout: nil) }
            return (action, id, state.queueTimeout)
        }
        switch action {
        case .granted:
            promise.succeed()
        case .rejectedQueueFull:
            promise.fail(Rejection.queueFull)
        case .rejectedBackoff(let until):
            promise.fail(Rejection.backingOff(secondsLeft: Self.secondsLeft(until: until, now: now)))
        case .queued:
            let timeout = eventLoop.scheduleTask(in: queueTimeout) { [weak self] in
                guard let self else { return }
                self.timedOut(id)
            }
            let stillQueued = state.withLock { state in
                guard state.waiters[id] != nil else { return false }
                state.waiters[id]?.timeout = timeout
                return true
            }
            if !stillQueued { timeout.cancel() }
        }
        return promise.futureResult
    }

    /// Returns a slot, saying how its request ended.
    public func release(_ outcome: Outcome) {
        settle(outcome, releasing: true)
    }

    /// Learns how an upstream request that held no slot of this governor ended (a shared governor's
    /// lease, while the shared tier cannot be told): a 429 backs this governor off too.
    public func learn(_ outcome: Outcome) {
        settle(outcome, releasing: false)
    }

    private func settle(_ outcome: Outcome, releasing: Bool) {
        let now = clock.nowNanoseconds()
        let (granted, rejected, backoffUntil) = state.withLock { state in
            let wakeups =
                releasing ? state.machine.release(outcome, now: now) : state.machine.learn(outcome, now: now)
            let granted = wakeups.granted.compactMap { state.waiters.removeValue(forKey: $0) }
            let rejected = wakeups.rejected.compactMap { state.waiters.removeValue(forKey: $0) }
            return (granted, rejected, wakeups.backoffUntil)
        }
        for waiter in granted {
            waiter.timeout?.cancel()
            waiter.promise.succeed()
        }
        let secondsLeft = Self.secondsLeft(until: backoffUntil, now: now)
        for waiter in rejected {
            waiter.timeout?.cancel()
            waiter.promise.fail(Rejection.backingOff(secondsLeft: secondsLeft))
        }
    }

    /// The current state.
    public var snapshot: Snapshot {
        let now = clock.nowNanoseconds()
        return state.withLock { state in
            Snapshot(
                inFlight: state.machine.inFlight,
                queued: state.machine.queue.count,
                limit: state.machine.limit,
                backoffSecondsLeft: Self.secondsLeft(until: state.machine.backoffUntil, now: now)
            )
        }
    }

    private func timedOut(_ id: Int) {
        let waiter = state.withLock { state -> Waiter? in
            guard state.machine.cancel(id) else { return nil }
            return state.waiters.removeValue(forKey: id)
        }
        waiter?.promise.fail(Rejection.queueTimeout)
    }

    private static func secondsLeft(until: UInt64, now: UInt64) -> Int {
        guard until > now else { return 0 }
        return Int((until - now + 999_999_999) / 1_000_000_000)
    }
}
