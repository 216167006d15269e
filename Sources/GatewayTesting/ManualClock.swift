import GatewayCore
import Synchronization

/// A clock that moves only when told to, for testing time-dependent behaviour without sleeping.
public final class ManualClock: CacheClock {
    private let now: Locked<UInt64>

    /// Starts at `start` nanoseconds (not zero by default, so "stored at 0" bugs show).
    public init(start: UInt64 = 1_000_000_000_000) { self.now = Locked(start) }

    public func nowNanoseconds() -> UInt64 { now.withLock { $0 } }

    /// Moves time forward by `seconds`.
    public func advance(seconds: Double) {
        now.withLock { $0 += UInt64(seconds * 1_000_000_000) }
    }
}
