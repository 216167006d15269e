import GatewayCore

extension SharedGovernor {
    /// The local side of the shared governor, with no locks, promises, clocks or Redis: which request tries
    /// Redis's script when, who waits in this replica's queue, who is let through, refused or sent to the
    /// fallback governor, and which slot a release gives back. Every method takes what happened and returns
    /// what to do.
    ///
    /// A request arriving while the queue is empty tries the script at once (several may be on their way
    /// together); one that finds every slot leased joins the queue, first in first out. Only the queue's head
    /// tries again, when woken (a slot freed on any replica, or the slow poll), and each grant lets the next
    /// head try at once.
    struct StateMachine {
        /// The most requests waiting in this replica's queue.
        var maxQueue: Int
        /// The limit in force as Redis last said (the configured one until it says).
        private(set) var limit: Int
        /// Requests that found every slot leased, oldest first.
        private(set) var queue = UpstreamGovernor.WaitQueue()
        /// Requests that arrived to an empty queue and are trying the script, not queued.
        private(set) var attempting: Set<Int> = []
        /// The queued request whose try is on its way to Redis (it may have left the queue since).
        private(set) var headAttempt: Int?
        /// The shared back-off's end, as Redis last said, on the local clock.
        private(set) var backoffUntil: UInt64 = 0
        /// The tokens of the leases this replica holds; any one is given back on a release.
        private(set) var leases: [String] = []
        /// Slots held from the fallback governor.
        private(set) var fallbackSlots = 0
        /// A wake-up came while tries were on their way, whose answers may predate the slot it announced.
        private var missedWake = false

        init(maxQueue: Int, limit: Int) {
            self.maxQueue = max(0, maxQueue)
            self.limit = max(1, limit)
        }

        /// What to do with a new request.
        enum AcquireAction: Equatable {
            /// Try the script for it now.
            case attempt
            /// It waits in the queue (its queue timeout starts).
            case queued
            case rejectedQueueFull
            case rejectedBackoff(until: UInt64)
        }

        /// What to do after an event: requests to let through, to refuse, to hand to the fallback governor,
        /// to start timing, and whether the queue's head tries the script next.
        struct Actions: Equatable {
            var granted: [Int] = []
            var rejectedQueueFull: [Int] = []
            /// Refused because the key backs off until ``backoffUntil``.
            var rejectedBackoff: [Int] = []
            var backoffUntil: UInt64 = 0
            /// Requests that now wait for the fallback governor instead (Redis failed or is not to be tried).
            var fallback: [Int] = []
            /// Requests that joined the queue: their queue timeout starts.
            var queued: [Int] = []
            /// A lease granted to a request that had already timed out: give it back at once.
            var orphanedLease: String?
            /// The queue's head, to try the script now.
            var attempt: Int?
        }

        /// Which slot a release gives back.
        enum Slot: Equatable {
            case lease(String)
            case fallback
            /// None held (a release without an acquire): nothing to give back.
            case none
        }

        /// A new request, `id`, at `now`.
        mutating func acquire(_ id: Int, now: UInt64) -> AcquireAction {
            if now < backoffUntil { return .rejectedBackoff(until: backoffUntil) }
            if queue.isEmpty {
                attempting.insert(id)
                return .attempt
            }
            guard queue.count < maxQueue else { return .rejectedQueueFull }
            queue.append(id)
            return .queued
        }

        /// Redis answered `id`'s try, made with `token`, at `now`.
        mutating func answered(_ id: Int, _ reply: GovernorScripts.AcquireReply, token: String, now: UInt64) -> Actions
        {
            limit = reply.limit
            let wasHead = headAttempt == id
            if wasHead { headAttempt = nil }
            let wasAttempting = attempting.remove(id) != nil
            var actions = Actions()
            switch reply {
            case .granted:
                if wasAttempting || (wasHead && queue.remove(id)) {
                    leases.append(token)
                    actions.granted = [id]
                    if wasHead { actions.attempt = nextAttempt() }
                } else {
                    actions.orphanedLease = token
                }
            case .full:
                if wasAttempting {
                    if queue.count < maxQueue {
                        queue.append(id)
                        actions.queued = [id]
                    } else {
                        actions.rejectedQueueFull = [id]
                    }
                }
                // A slot freed since this try was made: the head tries again rather than wait for the poll.
                if missedWake {
                    actions.attempt = nextAttempt()
                    if headAttempt == nil, attempting.isEmpty { missedWake = false }
                }
            case .backingOff(let milliseconds, _):
                backoffUntil = max(backoffUntil, now + UInt64(milliseconds) * 1_000_000)
                actions.rejectedBackoff = (wasAttempting ? [id] : []) + queue.removeAll()
                actions.backoffUntil = backoffUntil
            }
            return actions
        }

        /// `id`'s try failed, or Redis is not to be tried now: it and every queued request wait for the
        /// fallback governor instead.
        mutating func failed(_ id: Int) -> Actions {
            if headAttempt == id { headAttempt = nil }
            var actions = Actions()
            if attempting.remove(id) != nil { actions.fallback.append(id) }
            actions.fallback += queue.removeAll()
            return actions
        }

        /// A slot may have come free (on any replica), or the poll is due: the head tries, unless it already is.
        mutating func wake() -> Actions {
            var actions = Actions()
            actions.attempt = nextAttempt()
            if actions.attempt == nil, headAttempt != nil || !attempting.isEmpty { missedWake = true }
            return actions
        }

        /// A lease was given back; Redis answered with the back-off and limit (`nil`: it did not answer).
        /// While backing off every queued request is refused, else the head tries.
        mutating func released(_ reply: GovernorScripts.ReleaseReply?, now: UInt64) -> Actions {
            if let reply {
                limit = reply.limit
                if reply.backoffMilliseconds > 0 {
                    backoffUntil = max(backoffUntil, now + UInt64(reply.backoffMilliseconds) * 1_000_000)
                    return Actions(rejectedBackoff: queue.removeAll(), backoffUntil: backoffUntil)
                }
            }
            return wake()
        }

        /// Takes `id` out of the queue (its time ran out); `false` when it was not queued.
        mutating func cancel(_ id: Int) -> Bool {
            queue.remove(id)
        }

        /// The fallback governor gave a slot.
        mutating func fallbackGranted() {
            fallbackSlots += 1
        }

        /// The slot a release gives back: of the kind that is not granting now, whichever request held it
        /// (slots of a kind are interchangeable, and every request in flight holds one of either kind). While
        /// the shared tier is up, a fallback slot, so that the leases Redis counts never fall below this
        /// replica's requests in flight; while it is down, a lease, so that the fallback governor lets no new
        /// request through until this replica's requests in flight are below its limit.
        mutating func slotToRelease(sharedTierUp: Bool) -> Slot {
            let lease = !leases.isEmpty && (!sharedTierUp || fallbackSlots == 0)
            if lease { return .lease(leases.removeLast()) }
            guard fallbackSlots > 0 else { return .none }
            fallbackSlots -= 1
            return .fallback
        }

        /// New limits (a configuration reload): the configured limit holds until Redis says otherwise.
        mutating func configure(maxConcurrency: Int, maxQueue: Int) {
            self.maxQueue = max(0, maxQueue)
            self.limit = max(1, maxConcurrency)
        }

        /// The head's try, unless one is on its way. Made after any wake-up so far, it answers for them all.
        private mutating func nextAttempt() -> Int? {
            guard headAttempt == nil, let head = queue.first else { return nil }
            headAttempt = head
            missedWake = false
            return head
        }
    }
}
