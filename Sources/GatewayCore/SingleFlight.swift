import NIOCore
import Synchronization

/// Collapses concurrent work for the same key into one: the first caller for a key leads (does the
/// work), later callers join, and when the leader completes, every waiter's promise completes at once
/// with the same result. No polling: completion wakes each waiter on its own event loop.
public final class SingleFlight<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    private let shards: [Shard]

    /// Creates a group with `shardCount` independently locked shards.
    public init(shardCount: Int = 16) {
        precondition(shardCount > 0, "shardCount must be positive")
        self.shards = (0..<shardCount).map { _ in Shard() }
    }

    /// Adds `promise` to the waiters for `key`. Returns `true` when the caller is the leader and must
    /// eventually call ``complete(_:with:)`` for `key`.
    public func join(_ key: Key, promise: EventLoopPromise<Value>) -> Bool {
        shard(for: key).waiters.withLock { waiters in
            if waiters[key] != nil {
                waiters[key]?.append(promise)
                return false
            }
            waiters[key] = [promise]
            return true
        }
    }

    /// Adds `promise` to the flight for `key` only if one is under way; `false` (nothing added) otherwise.
    public func joinIfRunning(_ key: Key, promise: EventLoopPromise<Value>) -> Bool {
        shard(for: key).waiters.withLock { waiters in
            guard waiters[key] != nil else { return false }
            waiters[key]?.append(promise)
            return true
        }
    }

    /// Whether a flight for `key` is under way.
    public func isRunning(_ key: Key) -> Bool {
        shard(for: key).waiters.withLock { $0[key] != nil }
    }

    /// Starts a flight for `key` with no waiter when none is under way: `true` when the caller now leads
    /// (and must call ``complete(_:with:)``), `false` when a flight already runs (nothing is added to it).
    public func tryLead(_ key: Key) -> Bool {
        shard(for: key).waiters.withLock { waiters in
            guard waiters[key] == nil else { return false }
            waiters[key] = []
            return true
        }
    }

    /// Ends the flight for `key`: every waiter gets `result`, and the next ``join(_:promise:)`` leads anew.
    public func complete(_ key: Key, with result: Result<Value, any Error>) {
        let waiters = shard(for: key).waiters.withLock { $0.removeValue(forKey: key) } ?? []
        // Outside the lock: completing a promise runs callbacks (or schedules them on other loops).
        for promise in waiters { promise.completeWith(result) }
    }

    /// How many callers wait on flights right now, leaders included (a ``tryLead(_:)`` leader is not a waiter).
    public var waiterCount: Int {
        shards.reduce(0) { total, shard in total + shard.waiters.withLock { $0.values.reduce(0) { $0 + $1.count } } }
    }

    /// How many flights are under way.
    public var flightCount: Int {
        shards.reduce(0) { total, shard in total + shard.waiters.withLock { $0.count } }
    }

    private func shard(for key: Key) -> Shard {
        shards[Int(UInt(bitPattern: key.hashValue) % UInt(shards.count))]
    }

    private final class Shard: Sendable {
        let waiters = Locked<[Key: [EventLoopPromise<Value>]]>([:])
    }
}
