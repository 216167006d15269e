import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The gateway's clock: monotonic time for freshness, queues and durations, and the wall clock for the
/// dates an upstream may send (`Retry-After`). Injected, so tests move time instead of sleeping.
public protocol CacheClock: Sendable {
    /// Nanoseconds since an arbitrary fixed point; never decreases.
    func nowNanoseconds() -> UInt64

    /// Seconds since 1970, UTC.
    func secondsSince1970() -> Int
}

extension CacheClock {
    public func secondsSince1970() -> Int { Int(time(nil)) }
}

/// The process's monotonic clock.
public struct SystemCacheClock: CacheClock {
    /// Creates the clock.
    public init() {}

    public func nowNanoseconds() -> UInt64 { NIODeadline.now().uptimeNanoseconds }
}
