import GatewayCore
import Synchronization

/// A clock that moves only when told to, for testing time-dependent behaviour without sleeping.
public final class ManualClock: CacheClock {
    private let now: Locked<UInt64>
    private let start: UInt64
    private let wallStart: Int

    /// Starts at `start` nanoseconds (not zero by default, so "stored at 0" bugs show), and its wall clock
    /// at `wallStart` seconds since 1970 (2027-01-15); both move together.
    public init(start: UInt64 = 1_000_000_000_000, wallStart: Int = 1_800_000_000) {
        self.now = Locked(start)
        self.start = start
        self.wallStart = wallStart
    }

    public func nowNanoseconds() -> UInt64 { now.withLock { $0 } }

    public func secondsSince1970() -> Int { wallStart + Int((nowNanoseconds() - start) / 1_000_000_000) }

    /// Moves time forward by `seconds`.
    public func advance(seconds: Double) {
        now.withLock { $0 += UInt64(seconds * 1_000_000_000) }
    }
}
