import GatewayCore
import Logging

/// Whether one replica uses the shared tier right now, for every shared component of the replica.
///
/// Up until a Redis command fails (or times out): then down, and the replica works alone. While down,
/// ``shouldTry()`` lets one command through at a time, first after `firstRetry` and then at doubling
/// intervals up to `longestRetry`; the first that succeeds brings the tier up again. Each change of state
/// is logged once and reported to `onChange` (the metric and the admin stats read ``isUp``).
public final class SharedTierHealth: Sendable {
    private struct State {
        var isUp = true
        /// While down: when the next probe may go, and the interval after it.
        var nextProbe: UInt64 = 0
        var interval: UInt64
        var probing = false
        var failures = 0
    }

    private let state: Locked<State>
    private let clock: any CacheClock
    private let firstRetry: UInt64
    private let longestRetry: UInt64
    private let logger: Logger
    private let onChange: @Sendable (Bool) -> Void

    /// Health that starts up; `clock` times the retries.
    public init(
        clock: any CacheClock = SystemCacheClock(),
        firstRetry: Duration = .milliseconds(250),
        longestRetry: Duration = .seconds(5),
        logger: Logger,
        onChange: @escaping @Sendable (Bool) -> Void = { _ in }
    ) {
        self.clock = clock
        self.firstRetry = Self.nanoseconds(firstRetry)
        self.longestRetry = max(Self.nanoseconds(longestRetry), Self.nanoseconds(firstRetry))
        self.state = Locked(State(interval: Self.nanoseconds(firstRetry)))
        self.logger = logger
        self.onChange = onChange
    }

    /// Whether the shared tier is in use.
    public var isUp: Bool { state.withLock { $0.isUp } }

    /// Commands that failed since start.
    public var failures: Int { state.withLock { $0.failures } }

    /// Whether a caller should use Redis now: always while up; while down, one caller when the next
    /// probe is due (it must then report ``succeeded()`` or ``failed(_:)``).
    public func shouldTry() -> Bool {
        let now = clock.nowNanoseconds()
        return state.withLock { state in
            if state.isUp { return true }
            guard !state.probing, now >= state.nextProbe else { return false }
            state.probing = true
            return true
        }
    }

    /// A Redis command succeeded.
    public func succeeded() {
        let cameUp = state.withLock { state -> Bool in
            state.probing = false
            guard !state.isUp else { return false }
            state.isUp = true
            state.interval = firstRetry
            return true
        }
        guard cameUp else { return }
        logger.notice("shared tier is up again: replicas share pages, flights, the governor and budgets")
        onChange(true)
    }

    /// A Redis command failed with `error`.
    public func failed(_ error: any Error) {
        let now = clock.nowNanoseconds()
        let wentDown = state.withLock { state -> Bool in
            state.failures += 1
            state.probing = false
            let wasUp = state.isUp
            state.nextProbe = now &+ state.interval
            state.interval = wasUp ? firstRetry : min(longestRetry, state.interval * 2)
            if wasUp { state.nextProbe = now &+ firstRetry }
            state.isUp = false
            return wasUp
        }
        guard wentDown else { return }
        logger.warning(
            "shared tier is down: this replica works alone until Redis answers again",
            metadata: ["error": "\(error)"]
        )
        onChange(false)
    }

    private static func nanoseconds(_ duration: Duration) -> UInt64 {
        let (seconds, attoseconds) = duration.components
        return UInt64(max(0, seconds)) * 1_000_000_000 + UInt64(max(0, attoseconds) / 1_000_000_000)
    }
}
