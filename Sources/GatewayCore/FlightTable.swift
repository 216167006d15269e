import NIOCore
import Synchronization

/// What ``FlightTable/enter(_:waitingOn:recheck:spend:)`` decided for one request that missed the cache.
public enum FlightEntry<Value: Sendable, Found> {
    /// The question was answered while the request looked: `Found` (a page stored by a flight that has just
    /// ended). No upstream request, nothing spent.
    case hit(Found)
    /// A flight for the question is under way: the request waits for it (the future), free of charge.
    /// `nil` for a request that does not wait (a background refresh): nothing was added.
    case join(EventLoopFuture<Value>?)
    /// The request leads a new flight: its budget was spent, and the caller must do the work and then call
    /// ``FlightTable/complete(_:with:)``. The future is the leader's own answer (`nil` when it does not wait).
    case lead(EventLoopFuture<Value>?)
    /// The team's budget is spent: no flight, no upstream request; a token comes back in this many seconds.
    case refuse(retryAfterSeconds: Int)
}

/// Where a flight for a question is led or joined, and completed: the seam a shared tier implements to
/// lead flights across replicas (``FlightTable`` is the in-process one).
public protocol FlightCoordinator<Key, Value>: Sendable {
    associatedtype Key: Hashable & Sendable
    associatedtype Value: Sendable

    /// Decides, as one step, what a request that missed the cache does: join a flight under way, find the
    /// question answered after all (`recheck`), be refused by its budget (`spend`), or lead. `spend` is
    /// called only when the request would lead, so a team is never charged for a request it then joins.
    func enter<Found>(
        _ key: Key,
        waitingOn eventLoop: (any EventLoop)?,
        recheck: () -> Found?,
        spend: () -> BudgetDecision
    ) -> FlightEntry<Value, Found>

    /// Ends the flight for `key`: every waiter gets `result`, and the next ``enter(_:waitingOn:recheck:spend:)``
    /// may lead anew.
    func complete(_ key: Key, with result: Result<Value, any Error>)

    /// How many requests wait on flights right now (a background leader is not a waiter).
    var waiterCount: Int { get }

    /// How many flights are under way.
    var flightCount: Int { get }
}

/// Collapses concurrent misses for the same question into one flight: the first request leads (does the
/// work), later ones join, and when the leader completes, every waiter's future completes at once with the
/// same result, each on its own event loop. No polling.
///
/// Every decision for a key is taken under that key's shard lock, in one step: whether a flight runs,
/// whether the page arrived meanwhile, whether the budget allows a new upstream request. Charging and
/// joining therefore cannot disagree (a team is never charged and then made to join another team's flight),
/// and a request that looks just after a flight stored its page finds the page instead of asking again.
public final class FlightTable<Key: Hashable & Sendable, Value: Sendable>: FlightCoordinator {
    private let shards: [Shard]

    /// Creates a table with `shardCount` independently locked shards.
    public init(shardCount: Int = 16) {
        precondition(shardCount > 0, "shardCount must be positive")
        self.shards = (0..<shardCount).map { _ in Shard() }
    }

    public func enter<Found>(
        _ key: Key,
        waitingOn eventLoop: (any EventLoop)?,
        recheck: () -> Found?,
        spend: () -> BudgetDecision
    ) -> FlightEntry<Value, Found> {
        // Lock order: this shard, then (inside `recheck` and `spend`) a cache shard or the budgets; neither
        // ever takes a flight lock.
        shard(for: key).waiters.withLock { waiters in
            if waiters[key] != nil {
                guard let eventLoop else { return .join(nil) }
                let promise = eventLoop.makePromise(of: Value.self)
                waiters[key]?.append(promise)
                return .join(promise.futureResult)
            }
            if let found = recheck() { return .hit(found) }
            if case .denied(let retryAfter) = spend() { return .refuse(retryAfterSeconds: retryAfter) }
            guard let eventLoop else {
                waiters[key] = []
                return .lead(nil)
            }
            let promise = eventLoop.makePromise(of: Value.self)
            waiters[key] = [promise]
            return .lead(promise.futureResult)
        }
    }

    public func complete(_ key: Key, with result: Result<Value, any Error>) {
        let waiters = shard(for: key).waiters.withLock { $0.removeValue(forKey: key) } ?? []
        // Outside the lock: completing a promise runs callbacks (or schedules them on other loops).
        for promise in waiters { promise.completeWith(result) }
    }

    public var waiterCount: Int {
        shards.reduce(0) { total, shard in total + shard.waiters.withLock { $0.values.reduce(0) { $0 + $1.count } } }
    }

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
