import NIOConcurrencyHelpers

/// A value behind a lock: the shared-state primitive of the gateway (state machines in a lock, actions
/// outside it).
///
/// It wraps NIO's `NIOLockedValueBox` (a `pthread_mutex_t`) rather than `Synchronization.Mutex`: the
/// standard library's Mutex takes its lock in code built without ThreadSanitizer's instrumentation, so
/// under `--sanitize=thread` every contended access it protects is reported as a race. With a pthread
/// mutex, ThreadSanitizer sees the locking and reports only real races.
public final class Locked<Value>: @unchecked Sendable {
    @usableFromInline let box: NIOLockedValueBox<Value>

    /// Puts `value` behind the lock.
    public init(_ value: Value) { self.box = NIOLockedValueBox(value) }

    /// Runs `body` with the lock held.
    @inlinable
    public func withLock<Result>(_ body: (inout Value) throws -> Result) rethrows -> Result {
        try box.withLockedValue(body)
    }
}
