import NIOCore
import Synchronization

/// The in-memory page cache: TTL freshness, a stale window after it, a byte bound with
/// least-recently-used eviction, sharded by key hash so that every event loop can read at once.
///
/// Each shard holds `maxBytes / shardCount`; a page larger than that is not stored (it is still served).
/// By default the shards are few enough that each can hold the largest page the gateway accepts.
/// Every operation takes exactly one shard lock once.
public final class ResponseCache: Sendable {
    /// What a lookup found.
    public enum Lookup: Sendable {
        /// A fresh page, its age and its remaining freshness, in whole seconds.
        case fresh(CachedPage, age: Int, ttlLeft: Int)
        /// A page past its freshness but inside the stale window: its age, and how long ago it stopped
        /// being fresh, in whole seconds.
        case stale(CachedPage, age: Int, staleFor: Int)
        /// Nothing usable.
        case miss
    }

    /// What a store did.
    public enum StoreOutcome: Sendable, Hashable {
        /// Stored, possibly evicting older pages.
        case stored
        /// Larger than a shard's bound; not stored.
        case tooLarge
    }

    /// Counters for monitoring and tests.
    public struct Statistics: Sendable, Hashable {
        /// Pages held.
        public var entries: Int
        /// Bytes accounted for those pages (their stored forms and header lines, keys and a fixed overhead each).
        public var bytes: Int
        /// Pages dropped to make room.
        public var evictions: Int
    }

    /// The fixed cost counted for each page beyond its bytes and key: the slot, the node, the buffers' own.
    public static let entryOverhead = 128

    private let shards: LockedSlots<LRUStore<CacheKey, CachedPage>>
    /// What each shard may hold, in accounted bytes.
    private let perShardBytes: Int
    private let clock: any CacheClock
    private let ttlNanoseconds: Atomic<UInt64>
    private let staleNanoseconds: Atomic<UInt64>

    /// Creates a cache holding at most `maxBytes`, pages fresh for `ttlSeconds` and then kept, stale, for
    /// `staleSeconds` more.
    public init(
        maxBytes: Int,
        ttlSeconds: Int,
        staleSeconds: Int = 0,
        shardCount: Int? = nil,
        clock: any CacheClock = SystemCacheClock()
    ) {
        let shardCount = shardCount ?? Self.shardCount(forMaxBytes: maxBytes)
        precondition(shardCount > 0, "shardCount must be positive")
        let perShard = max(0, maxBytes) / shardCount
        self.shards = LockedSlots(count: shardCount) { _ in LRUStore(capacity: perShard) }
        self.perShardBytes = perShard
        self.clock = clock
        self.ttlNanoseconds = Atomic(Self.nanoseconds(ttlSeconds))
        self.staleNanoseconds = Atomic(Self.nanoseconds(staleSeconds))
    }

    /// `seconds` as nanoseconds, negative as 0, saturating at about 584 years.
    private static func nanoseconds(_ seconds: Int) -> UInt64 {
        let (product, overflow) = UInt64(max(0, seconds)).multipliedReportingOverflow(by: 1_000_000_000)
        return overflow ? UInt64.max : product
    }

    /// The number of shards for a bound: as many as 16, but each large enough for the largest page the
    /// upstream client accepts (8 MiB), so that any page a smaller cache would store is stored here too.
    public static func shardCount(forMaxBytes maxBytes: Int, largestPage: Int = 8 * 1024 * 1024) -> Int {
        max(1, min(16, maxBytes / max(1, largestPage)))
    }

    /// How long a page may be served stale after its freshness ends, in seconds; can be changed while running.
    public var staleSeconds: Int {
        get { Int(staleNanoseconds.load(ordering: .relaxed) / 1_000_000_000) }
        set { staleNanoseconds.store(Self.nanoseconds(newValue), ordering: .relaxed) }
    }

    /// How long a page stays fresh, in seconds; can be changed while running.
    public var ttlSeconds: Int {
        get { Int(ttlNanoseconds.load(ordering: .relaxed) / 1_000_000_000) }
        set { ttlNanoseconds.store(Self.nanoseconds(newValue), ordering: .relaxed) }
    }

    /// Looks `key` up, marking it recently used. A page past its stale window is dropped and reported as
    /// a miss, as if it had never been stored.
    public func lookup(_ key: CacheKey) -> Lookup {
        let ttl = ttlNanoseconds.load(ordering: .relaxed)
        let stale = staleNanoseconds.load(ordering: .relaxed)
        return shards.withLock(shard(for: key)) { store in
            guard let page = store.value(for: key) else { return .miss }
            // Read under the lock: a page stored just before, by another loop, is never "from the future".
            let now = clock.nowNanoseconds()
            // A stamp from the future cannot come from this clock: do not trust the page.
            guard now >= page.storedAt else {
                store.removeValue(for: key)
                return .miss
            }
            let age = now - page.storedAt
            let ageSeconds = Int(age / 1_000_000_000)
            if age < ttl {
                return .fresh(page, age: ageSeconds, ttlLeft: Int((ttl - age) / 1_000_000_000))
            }
            if age - ttl < stale {
                return .stale(page, age: ageSeconds, staleFor: Int((age - ttl) / 1_000_000_000))
            }
            store.removeValue(for: key)
            return .miss
        }
    }

    /// Notes that refreshing the (stale) page under `key` failed, so it is now served as stale-if-error.
    public func markRevalidationFailed(_ key: CacheKey) {
        shards.withLock(shard(for: key)) { store in store.update(key) { $0.revalidationFailed = true } }
    }

    /// Whether a page of `bodyBytes` (its ``CachedPage/byteCount``: the stored form, compressed unless
    /// `COMPRESSION=off`, and its header lines) under `key` is small enough to be stored (a shard holds
    /// `maxBytes / shardCount`).
    public func fits(bodyBytes: Int, for key: CacheKey) -> Bool {
        Self.cost(bodyBytes: bodyBytes, key: key) <= perShardBytes
    }

    private static func cost(bodyBytes: Int, key: CacheKey) -> Int {
        bodyBytes + key.byteCount + entryOverhead
    }

    /// Stores `page` under `key`, replacing any page there and evicting the least recently used as needed.
    @discardableResult
    public func store(_ page: CachedPage, for key: CacheKey) -> StoreOutcome {
        let cost = Self.cost(bodyBytes: page.byteCount, key: key)
        return shards.withLock(shard(for: key)) { store in
            store.insert(page, for: key, cost: cost) ? .stored : .tooLarge
        }
    }

    /// Drops the page under `key`, if any.
    public func remove(_ key: CacheKey) {
        shards.withLock(shard(for: key)) { store in _ = store.removeValue(for: key) }
    }

    /// Drops every page whose key `matches`; returns how many were dropped.
    @discardableResult
    public func removeAll(where matches: @Sendable (CacheKey) -> Bool) -> Int {
        (0..<shards.count).reduce(0) { total, shard in
            total + shards.withLock(shard) { store in store.removeAll(where: matches) }
        }
    }

    /// Drops the pages a change to `agent`'s invocations makes wrong (those filtered on it, and those with no
    /// agent filter), or every page when `agent` is `nil` (the change cannot be pinned to one agent);
    /// returns how many were dropped.
    @discardableResult
    public func invalidate(agent: String?) -> Int {
        guard let agent else { return removeAll { _ in true } }
        return removeAll { $0.concerns(agent: agent) }
    }

    /// The current counters, summed over shards.
    public var statistics: Statistics {
        (0..<shards.count).reduce(into: Statistics(entries: 0, bytes: 0, evictions: 0)) { total, shard in
            shards.withLock(shard) { store in
                total.entries += store.count
                total.bytes += store.totalCost
                total.evictions += store.evictions
            }
        }
    }

    /// The most bytes the shards hold together: `maxBytes` as created, rounded down to whole shards.
    public var maxBytes: Int { perShardBytes * shards.count }

    /// The agents with the most pages, and the pages without an agent filter. For the status page, not the
    /// request path: each shard's lock is held only to copy out its keys' agent ids (no allocation but the
    /// array's), and they are counted outside it.
    public func pagesByAgent(limit: Int) -> AgentPages {
        var agents: [String?] = []
        for shard in 0..<shards.count {
            shards.withLock(shard) { store in
                agents.reserveCapacity(agents.count + store.count)
                store.forEachKey { agents.append($0.agentID) }
            }
        }
        var counts: [[UInt8]?: Int] = [:]
        for agent in agents { counts[agent.map { Array($0.utf8) }, default: 0] += 1 }
        return AgentPages(counts: counts, limit: limit)
    }

    /// The current clock reading, so callers stamp pages with the cache's notion of time.
    public func now() -> UInt64 { clock.nowNanoseconds() }

    /// The index of the shard holding `key`.
    private func shard(for key: CacheKey) -> Int {
        Int(UInt(bitPattern: key.digest) % UInt(shards.count))
    }
}
