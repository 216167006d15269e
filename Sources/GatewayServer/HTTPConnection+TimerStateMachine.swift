import NIOCore

extension HTTPConnection {
    /// Decides when a connection has waited too long: idle between requests (or a client too slow to send a
    /// whole request, or one that stopped reading answers) for `idleTimeout`, or a request head still
    /// arriving `headTimeout` after its first byte (a client sending a head a byte at a time, however often).
    ///
    /// One check is scheduled at a time, for the earliest deadline that matters. Each request only moves
    /// `lastActivity`: scheduling and cancelling a timer per request would cost more than the rest of a cache
    /// hit. When the check fires early, it is armed again for what is left. Only a head left incomplete by a
    /// read is timed (one that arrives whole is done before any check could run); a head that begins while
    /// the check is armed for later than its own deadline moves the check earlier, which happens only to
    /// heads split across reads.
    ///
    /// The idle check does not close a connection while an answer is being prepared (the upstream timeout
    /// bounds that): it looks again a whole `idleTimeout` later.
    struct TimerStateMachine {
        /// What the owner does with its one scheduled check.
        enum Action: Equatable {
            case none
            /// Schedule the check for `deadline`, in place of any scheduled one.
            case arm(NIODeadline)
            /// Cancel the scheduled check, if any.
            case cancel
            /// Close the connection: it waited too long.
            case close
        }

        /// `nil`: idleness is not timed (a reader on its own, ``RequestDecoder``).
        private let idleTimeout: TimeAmount?
        private let headTimeout: TimeAmount
        /// When the connection last started waiting for a request, or a request last began.
        private(set) var lastActivity: NIODeadline
        /// When the first byte of the head under way arrived; `nil` while no head is under way.
        private var headStarted: NIODeadline?
        /// The deadline the scheduled check is armed for; `nil` while none is scheduled.
        private var armed: NIODeadline?
        private var isClosed = false

        /// Times idleness after `idleTimeout` (when given) and heads after `headTimeout`.
        init(idleTimeout: TimeAmount?, headTimeout: TimeAmount) {
            self.idleTimeout = idleTimeout
            self.headTimeout = headTimeout
            self.lastActivity = .uptimeNanoseconds(0)
        }

        /// Whether a head under way is being timed.
        var isTimingHead: Bool { headStarted != nil }

        /// The connection started waiting for a request, or a request began, at `now`: the idle clock
        /// starts again. Arms the check only when none is scheduled (at the connection's start).
        mutating func activity(at now: NIODeadline) -> Action {
            lastActivity = now
            guard !isClosed, armed == nil, let idleTimeout else { return .none }
            return arm(now + idleTimeout)
        }

        /// A read ended inside a head, at `now` (again and again while it is under way: only the first
        /// call counts).
        mutating func headBegan(at now: NIODeadline) -> Action {
            guard !isClosed, headStarted == nil else { return .none }
            headStarted = now
            let deadline = now + headTimeout
            if let armed, armed <= deadline { return .none }
            return arm(deadline)
        }

        /// A whole head arrived.
        mutating func headCompleted() {
            headStarted = nil
        }

        /// The scheduled check ran at `now`; `isAnswering`: an answer is being prepared.
        mutating func fired(at now: NIODeadline, isAnswering: Bool) -> Action {
            armed = nil
            guard !isClosed else { return .none }
            var next: NIODeadline?
            if let headStarted {
                let deadline = headStarted + headTimeout
                if now >= deadline { return timedOut() }
                next = deadline
            }
            if let idleTimeout {
                // While answering, looked at again later; the answer moves `lastActivity` when written.
                let deadline = isAnswering ? now + idleTimeout : lastActivity + idleTimeout
                if now >= deadline { return timedOut() }
                next = min(next ?? deadline, deadline)
            }
            guard let next else { return .none }
            return arm(next)
        }

        /// The connection closes: nothing more to check.
        mutating func close() -> Action {
            let wasArmed = armed != nil
            isClosed = true
            headStarted = nil
            armed = nil
            return wasArmed ? .cancel : .none
        }

        private mutating func timedOut() -> Action {
            isClosed = true
            headStarted = nil
            return .close
        }

        private mutating func arm(_ deadline: NIODeadline) -> Action {
            armed = deadline
            return .arm(deadline)
        }
    }
}
