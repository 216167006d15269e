extension UpstreamGovernor {
    /// The governor's rules, with no locks, promises or clocks: every method takes the time and returns
    /// what to do, so each rule is tested on its own.
    struct StateMachine {
        struct Settings {
            var maxConcurrency: Int
            var maxQueue: Int
            var backoffMaxNanoseconds: UInt64
        }

        /// What to do with a request for a slot.
        enum AcquireAction: Equatable {
            case granted
            case queued
            case rejectedQueueFull
            case rejectedBackoff(until: UInt64)
        }

        /// What to do after a slot is returned: waiters to let through, and waiters to refuse because the
        /// key is now backing off.
        struct Wakeups: Equatable {
            var granted: [Int] = []
            var rejected: [Int] = []
            var backoffUntil: UInt64 = 0
        }

        /// After this many successes in a row, a limit learned from the upstream is raised by one (until it
        /// reaches the configured one), so one 429 during an incident does not cap the gateway for good.
        static let successesToRaiseLimit = 50

        /// A `Retry-After` longer than this (an hour) is treated as this: a bad header must not stop the
        /// gateway for days.
        static let longestRetryAfterSeconds = 3_600

        var settings: Settings
        private(set) var inFlight = 0
        /// The requests waiting for a slot, oldest first.
        private(set) var queue = WaitQueue()
        /// The upstream's own `maximum-concurrent-requests`, once a 429 has told it.
        private(set) var learnedLimit: Int?
        private(set) var backoffUntil: UInt64 = 0
        private var consecutiveRateLimits = 0
        private var consecutiveSuccesses = 0

        init(settings: Settings) { self.settings = settings }

        /// How many requests may be in flight at once.
        var limit: Int { max(1, min(settings.maxConcurrency, learnedLimit ?? Int.max)) }

        mutating func acquire(_ id: Int, now: UInt64) -> AcquireAction {
            if now < backoffUntil { return .rejectedBackoff(until: backoffUntil) }
            if inFlight < limit, queue.isEmpty {
                inFlight += 1
                return .granted
            }
            guard queue.count < settings.maxQueue else { return .rejectedQueueFull }
            queue.append(id)
            return .queued
        }

        /// Takes a waiter out of the queue (its time ran out); `false` when it was not there any more.
        mutating func cancel(_ id: Int) -> Bool {
            queue.remove(id)
        }

        mutating func release(_ outcome: Outcome, now: UInt64) -> Wakeups {
            inFlight = max(0, inFlight - 1)
            return learn(outcome, now: now)
        }

        /// Learns from an upstream answer without a slot being given back (the slot was another
        /// governor's): a 429 starts the back-off and may lower the limit, a success counts towards raising it.
        mutating func learn(_ outcome: Outcome, now: UInt64) -> Wakeups {
            switch outcome {
            case .success:
                consecutiveRateLimits = 0
                consecutiveSuccesses += 1
                if let learned = learnedLimit, consecutiveSuccesses >= Self.successesToRaiseLimit {
                    consecutiveSuccesses = 0
                    learnedLimit = learned + 1 >= settings.maxConcurrency ? nil : learned + 1
                }
            case .rateLimited(let retryAfterSeconds, let maximumConcurrent):
                consecutiveRateLimits += 1
                consecutiveSuccesses = 0
                if let maximumConcurrent, maximumConcurrent > 0 {
                    learnedLimit = min(learnedLimit ?? Int.max, maximumConcurrent)
                }
                let delay: UInt64
                if let retryAfterSeconds {
                    delay = UInt64(min(max(0, retryAfterSeconds), Self.longestRetryAfterSeconds)) * 1_000_000_000
                } else {
                    // 1 s, 2 s, 4 s, ... up to the configured maximum.
                    let doublings = UInt64(min(consecutiveRateLimits - 1, 40))
                    delay = min(settings.backoffMaxNanoseconds, 1_000_000_000 << doublings)
                }
                backoffUntil = max(backoffUntil, now + delay)
            case .other:
                break
            }
            return wakeups(now: now)
        }

        /// Lets queued waiters through up to the limit, or refuses them all while backing off.
        mutating func wakeups(now: UInt64) -> Wakeups {
            if now < backoffUntil {
                return Wakeups(granted: [], rejected: queue.removeAll(), backoffUntil: backoffUntil)
            }
            var wakeups = Wakeups()
            while inFlight < limit, let id = queue.popFirst() {
                wakeups.granted.append(id)
                inFlight += 1
            }
            return wakeups
        }
    }
}
