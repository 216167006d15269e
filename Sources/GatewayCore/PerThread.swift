#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// One value per thread, each behind its own lock, for state that every request touches and that is
/// read whole only now and then (statistics, a metrics scrape), or that each thread can keep for itself
/// (a memo).
///
/// A lock or an atomic counter shared by every event loop costs more than its instructions: each core
/// that writes it must first take its cache line from the core that wrote it last. With one stripe per
/// thread, an event loop takes only its own lock, which stays in its own core's cache; a reader visits
/// every stripe. The stripes are ``LockedSlots``: no two share a cache line, and reaching one writes
/// nothing but its own lock.
///
/// A thread gets the next unused stripe the first time it asks for one, and keeps it. Past `stripeCount`
/// threads, stripes are shared (still correct, only contended again).
public final class PerThread<Value>: Sendable {
    @usableFromInline let stripes: LockedSlots<Value>

    /// Enough stripes for the event loops of a large machine plus the threads beside them.
    public static var defaultStripeCount: Int { 64 }

    /// `stripeCount` stripes, each starting as `initial()`.
    public init(stripeCount: Int = PerThread.defaultStripeCount, initial: () -> Value) {
        precondition(stripeCount > 0, "PerThread needs a stripe")
        self.stripes = LockedSlots(count: stripeCount) { _ in initial() }
    }

    /// Runs `body` on the calling thread's stripe, under its lock.
    @inlinable
    public func withLocal<Result>(_ body: (inout Value) throws -> Result) rethrows -> Result {
        try stripes.withLock(ThreadIndex.current % stripes.count, body)
    }

    /// Runs `body` on every stripe in turn, each under its lock.
    public func modifyEach(_ body: (inout Value) throws -> Void) rethrows {
        for index in 0..<stripes.count { try stripes.withLock(index, body) }
    }

    /// Combines every stripe's value.
    public func reduce<Result>(_ initial: Result, _ combine: (Result, Value) throws -> Result) rethrows -> Result {
        var result = initial
        for index in 0..<stripes.count { result = try stripes.withLock(index) { try combine(result, $0) } }
        return result
    }
}

/// A small number for each thread, given in order of first use: 0, 1, 2, ...
@usableFromInline
enum ThreadIndex {
    /// The slot where each thread keeps its number plus one (0, the slot's initial value, is "none yet").
    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        let created = pthread_key_create(&key, nil)
        precondition(created == 0, "pthread_key_create failed: \(created)")
        return key
    }()
    private static let next = Locked(0)

    /// The calling thread's number.
    @usableFromInline
    static var current: Int {
        if let stored = pthread_getspecific(key) { return Int(bitPattern: stored) - 1 }
        let index = next.withLock { next in
            defer { next += 1 }
            return next
        }
        pthread_setspecific(key, UnsafeRawPointer(bitPattern: index + 1))
        return index
    }
}
