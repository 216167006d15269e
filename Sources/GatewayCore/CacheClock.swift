import NIOCore

/// A monotonic clock for the cache, so tests can move time instead of sleeping.
public protocol CacheClock: Sendable {
    /// Nanoseconds since an arbitrary fixed point; never decreases.
    func nowNanoseconds() -> UInt64
}

/// The process's monotonic clock.
public struct SystemCacheClock: CacheClock {
    /// Creates the clock.
    public init() {}

    public func nowNanoseconds() -> UInt64 { NIODeadline.now().uptimeNanoseconds }
}
