import NIOCore
import Synchronization
import Testing

@testable import GatewayCore

/// A clock the test moves by hand, so freshness is checked without sleeping.
final class TestClock: CacheClock {
    private let reading: Locked<UInt64>

    init(start: UInt64 = 1_000_000_000_000) { self.reading = Locked(start) }

    func nowNanoseconds() -> UInt64 { reading.withLock { $0 } }

    func advance(nanoseconds: UInt64) { reading.withLock { $0 += nanoseconds } }

    func advance(seconds: UInt64) { advance(nanoseconds: seconds * 1_000_000_000) }
}

/// What a fresh lookup gave, in comparable form.
private struct Hit: Equatable {
    var body: String
    var contentType: String
    var age: Int
    var ttlLeft: Int
}

private func hit(_ cache: ResponseCache, _ key: CacheKey) -> Hit? {
    guard case .fresh(let page, let age, let ttlLeft) = cache.lookup(key) else { return nil }
    return Hit(body: String(buffer: page.body), contentType: page.contentType, age: age, ttlLeft: ttlLeft)
}

private func page(_ body: String, at storedAt: UInt64) -> CachedPage {
    CachedPage(body: ByteBuffer(string: body), contentType: "application/json", storedAt: storedAt)
}

private func key(_ name: String) -> CacheKey { CacheKey(credential: "fp", query: "q=" + name) }

/// The bytes the cache must account for a page: body, both halves of the key, and the fixed overhead.
/// What a page of `body` costs: its bytes and header lines (`ETag` and `Last-Modified` are the same length
/// for every page), its key and the fixed overhead.
private func cost(_ body: String, _ key: CacheKey) -> Int {
    page(body, at: 0).byteCount + key.byteCount + ResponseCache.entryOverhead
}

private let second: UInt64 = 1_000_000_000

@Suite("ResponseCache: freshness")
struct ResponseCacheTTLTests {
    @Test func emptyCacheMisses() {
        let cache = ResponseCache(maxBytes: 1 << 20, ttlSeconds: 30, clock: TestClock())
        #expect(hit(cache, key("a")) == nil)
        #expect(cache.statistics == ResponseCache.Statistics(entries: 0, bytes: 0, evictions: 0))
    }

    @Test func freshUntilTheTTLThenDropped() {
        let clock = TestClock()
        let cache = ResponseCache(maxBytes: 1 << 20, ttlSeconds: 30, shardCount: 1, clock: clock)
        #expect(cache.now() == clock.nowNanoseconds())
        #expect(cache.store(page("one", at: cache.now()), for: key("a")) == .stored)
        #expect(hit(cache, key("a")) == Hit(body: "one", contentType: "application/json", age: 0, ttlLeft: 30))

        clock.advance(nanoseconds: 10 * second + second / 2)
        #expect(hit(cache, key("a"))?.age == 10)
        #expect(hit(cache, key("a"))?.ttlLeft == 19)

        clock.advance(nanoseconds: 19 * second + second / 2 - 1)
        #expect(hit(cache, key("a"))?.age == 29)

        clock.advance(nanoseconds: 1)
        #expect(hit(cache, key("a")) == nil)
        #expect(cache.statistics.entries == 0)
        #expect(cache.statistics.bytes == 0)
        #expect(cache.statistics.evictions == 0)
    }

    @Test func ageCountsFromWhenThePageArrived() {
        let clock = TestClock()
        let cache = ResponseCache(maxBytes: 1 << 20, ttlSeconds: 30, clock: clock)
        cache.store(page("old", at: cache.now() - 12 * second), for: key("a"))
        #expect(hit(cache, key("a")) == Hit(body: "old", contentType: "application/json", age: 12, ttlLeft: 18))
        cache.store(page("stale", at: cache.now() - 30 * second), for: key("b"))
        #expect(hit(cache, key("b")) == nil)
    }

    @Test func replacingAPageRestartsItsAge() {
        let clock = TestClock()
        let cache = ResponseCache(maxBytes: 1 << 20, ttlSeconds: 30, clock: clock)
        cache.store(page("one", at: cache.now()), for: key("a"))
        clock.advance(seconds: 20)
        cache.store(page("two", at: cache.now()), for: key("a"))
        clock.advance(seconds: 5)
        #expect(hit(cache, key("a")) == Hit(body: "two", contentType: "application/json", age: 5, ttlLeft: 25))
    }

    @Test func shorterTTLAppliesToPagesAlreadyStored() {
        let clock = TestClock()
        let cache = ResponseCache(maxBytes: 1 << 20, ttlSeconds: 30, clock: clock)
        cache.store(page("one", at: cache.now()), for: key("a"))
        clock.advance(seconds: 15)
        #expect(hit(cache, key("a"))?.ttlLeft == 15)
        cache.ttlSeconds = 10
        #expect(cache.ttlSeconds == 10)
        #expect(hit(cache, key("a")) == nil)
    }

    @Test func longerTTLKeepsPagesFreshLonger() {
        let clock = TestClock()
        let cache = ResponseCache(maxBytes: 1 << 20, ttlSeconds: 30, clock: clock)
        cache.store(page("one", at: cache.now()), for: key("a"))
        clock.advance(seconds: 40)
        cache.ttlSeconds = 60
        #expect(hit(cache, key("a")) == Hit(body: "one", contentType: "application/json", age: 40, ttlLeft: 20))
    }

    @Test func zeroOrNegativeTTLNeverServes() {
        let clock = TestClock()
        let cache = ResponseCache(maxBytes: 1 << 20, ttlSeconds: -5, clock: clock)
        #expect(cache.ttlSeconds == 0)
        cache.store(page("one", at: cache.now()), for: key("a"))
        #expect(hit(cache, key("a")) == nil)
        cache.ttlSeconds = -1
        #expect(cache.ttlSeconds == 0)
    }

    @Test func pageStampedAfterNowIsNotServed() {
        let clock = TestClock()
        let cache = ResponseCache(maxBytes: 1 << 20, ttlSeconds: 30, clock: clock)
        cache.store(page("future", at: cache.now() + second), for: key("a"))
        #expect(hit(cache, key("a")) == nil)
    }
}

@Suite("ResponseCache: byte bound and least-recently-used eviction")
struct ResponseCacheEvictionTests {
    private let body = String(repeating: "x", count: 100)

    @Test func evictsTheLeastRecentlyUsedPage() {
        let clock = TestClock()
        let each = cost(body, key("a"))
        let cache = ResponseCache(maxBytes: 3 * each, ttlSeconds: 30, shardCount: 1, clock: clock)
        for name in ["a", "b", "c"] { #expect(cache.store(page(body, at: cache.now()), for: key(name)) == .stored) }
        #expect(cache.statistics == ResponseCache.Statistics(entries: 3, bytes: 3 * each, evictions: 0))

        // A lookup makes "a" the most recent, so "b" is now the oldest.
        #expect(hit(cache, key("a")) != nil)
        #expect(cache.store(page(body, at: cache.now()), for: key("d")) == .stored)
        #expect(cache.statistics == ResponseCache.Statistics(entries: 3, bytes: 3 * each, evictions: 1))
        #expect(hit(cache, key("b")) == nil)
        #expect(hit(cache, key("a")) != nil)
        #expect(hit(cache, key("c")) != nil)
        #expect(hit(cache, key("d")) != nil)
    }

    @Test func evictsAsManyPagesAsALargePageNeeds() {
        let each = cost(body, key("a"))
        let cache = ResponseCache(maxBytes: 3 * each, ttlSeconds: 30, shardCount: 1, clock: TestClock())
        for name in ["a", "b", "c"] { cache.store(page(body, at: cache.now()), for: key(name)) }
        let large = String(repeating: "y", count: 2 * each - cost("", key("L")))
        #expect(cost(large, key("L")) == 2 * each)
        #expect(cache.store(page(large, at: cache.now()), for: key("L")) == .stored)
        #expect(cache.statistics == ResponseCache.Statistics(entries: 2, bytes: 3 * each, evictions: 2))
        #expect(hit(cache, key("a")) == nil)
        #expect(hit(cache, key("b")) == nil)
        #expect(hit(cache, key("c"))?.body == body)
        #expect(hit(cache, key("L"))?.body == large)
    }

    @Test func pageLargerThanTheBoundIsNotStored() {
        let cache = ResponseCache(maxBytes: 1000, ttlSeconds: 30, shardCount: 1, clock: TestClock())
        cache.store(page("small", at: cache.now()), for: key("s"))
        let fits = String(repeating: "z", count: 1000 - cost("", key("f")))
        let tooLarge = fits + "z"
        #expect(cache.store(page(tooLarge, at: cache.now()), for: key("f")) == .tooLarge)
        #expect(hit(cache, key("f")) == nil)
        #expect(hit(cache, key("s"))?.body == "small")
        #expect(cache.statistics == ResponseCache.Statistics(entries: 1, bytes: cost("small", key("s")), evictions: 0))

        #expect(cache.store(page(fits, at: cache.now()), for: key("f")) == .stored)
        #expect(cache.statistics == ResponseCache.Statistics(entries: 1, bytes: 1000, evictions: 1))
    }

    @Test func oversizedReplacementDropsTheOldPage() {
        let cache = ResponseCache(maxBytes: 1000, ttlSeconds: 30, shardCount: 1, clock: TestClock())
        cache.store(page("old", at: cache.now()), for: key("a"))
        #expect(cache.store(page(String(repeating: "z", count: 1000), at: cache.now()), for: key("a")) == .tooLarge)
        #expect(hit(cache, key("a")) == nil)
        #expect(cache.statistics == ResponseCache.Statistics(entries: 0, bytes: 0, evictions: 0))
    }

    @Test func eachShardHoldsItsShareOfTheBound() {
        let cache = ResponseCache(maxBytes: 4000, ttlSeconds: 30, shardCount: 4, clock: TestClock())
        let large = String(repeating: "z", count: 1001 - cost("", key("a")))
        #expect(cache.store(page(large, at: cache.now()), for: key("a")) == .tooLarge)
        let fits = String(repeating: "z", count: 1000 - cost("", key("a")))
        #expect(cache.store(page(fits, at: cache.now()), for: key("a")) == .stored)
    }

    @Test func zeroBytesStoresNothing() {
        let cache = ResponseCache(maxBytes: 0, ttlSeconds: 30, clock: TestClock())
        #expect(cache.store(page("", at: cache.now()), for: key("a")) == .tooLarge)
        #expect(cache.statistics.entries == 0)
    }

    @Test func replacingAKeyKeepsOneEntryAndItsNewCost() {
        let each = cost(body, key("a"))
        let cache = ResponseCache(maxBytes: 2 * each, ttlSeconds: 30, shardCount: 1, clock: TestClock())
        cache.store(page(body, at: cache.now()), for: key("a"))
        cache.store(page(body, at: cache.now()), for: key("b"))
        let other = String(repeating: "w", count: 100)
        #expect(cache.store(page(other, at: cache.now()), for: key("a")) == .stored)
        #expect(cache.statistics == ResponseCache.Statistics(entries: 2, bytes: 2 * each, evictions: 0))
        #expect(hit(cache, key("a"))?.body == other)
        #expect(hit(cache, key("b"))?.body == body)

        cache.store(page("short", at: cache.now()), for: key("a"))
        #expect(cache.statistics.bytes == each + cost("short", key("a")))
    }

    @Test func removeDropsOnePage() {
        let cache = ResponseCache(maxBytes: 1 << 20, ttlSeconds: 30, clock: TestClock())
        cache.store(page("one", at: cache.now()), for: key("a"))
        cache.store(page("two", at: cache.now()), for: key("b"))
        cache.remove(key("a"))
        cache.remove(key("missing"))
        #expect(hit(cache, key("a")) == nil)
        #expect(hit(cache, key("b"))?.body == "two")
        #expect(cache.statistics == ResponseCache.Statistics(entries: 1, bytes: cost("two", key("b")), evictions: 0))
    }

    @Test func statisticsSumOverShardsAndKeysDifferByCredential() {
        let cache = ResponseCache(maxBytes: 1 << 24, ttlSeconds: 30, clock: TestClock())
        var expectedBytes = 0
        for index in 0..<50 {
            let body = String(repeating: "b", count: index)
            let credential = index.isMultiple(of: 2) ? "one" : "other"
            let distinct = CacheKey(credential: credential, query: "page_size=30&n=\(index)")
            cache.store(page(body, at: cache.now()), for: distinct)
            expectedBytes += cost(body, distinct)
        }
        #expect(cache.statistics == ResponseCache.Statistics(entries: 50, bytes: expectedBytes, evictions: 0))

        cache.store(page("mine", at: cache.now()), for: CacheKey(credential: "one", query: "q"))
        cache.store(page("yours", at: cache.now()), for: CacheKey(credential: "two", query: "q"))
        #expect(hit(cache, CacheKey(credential: "one", query: "q"))?.body == "mine")
        #expect(hit(cache, CacheKey(credential: "two", query: "q"))?.body == "yours")
    }

    @Test func concurrentStoresAreAllCounted() async {
        let cache = ResponseCache(maxBytes: 1 << 24, ttlSeconds: 30, clock: TestClock())
        await withTaskGroup(of: Void.self) { group in
            for task in 0..<8 {
                group.addTask {
                    for index in 0..<100 {
                        cache.store(page("p", at: cache.now()), for: key("\(task)-\(index)"))
                        _ = cache.lookup(key("\(task)-\(index / 2)"))
                    }
                }
            }
        }
        #expect(cache.statistics.entries == 800)
        #expect(hit(cache, key("7-99"))?.body == "p")
    }
}

@Suite("LRUStore: recency order")
struct LRUStoreTests {
    @Test func orderFollowsUse() {
        var store = LRUStore<String, Int>(capacity: 30)
        for (index, name) in ["a", "b", "c"].enumerated() {
            let inserted = store.insert(index, for: name, cost: 10)
            #expect(inserted)
        }
        #expect(store.keysByRecency == ["c", "b", "a"])
        #expect(store.value(for: "a") == 0)
        #expect(store.keysByRecency == ["a", "c", "b"])
        #expect(store.value(for: "missing") == nil)
        let inserted = store.insert(3, for: "d", cost: 10)
        #expect(inserted)
        #expect(store.keysByRecency == ["d", "a", "c"])
        #expect(store.evictions == 1)
        #expect(store.totalCost == 30)
    }

    @Test func removalAndReuseKeepTheListConsistent() {
        var store = LRUStore<String, Int>(capacity: 100)
        for (index, name) in ["a", "b", "c", "d"].enumerated() { _ = store.insert(index, for: name, cost: 10) }
        #expect(store.removeValue(for: "b") == 1)
        #expect(store.removeValue(for: "d") == 3)
        #expect(store.removeValue(for: "d") == nil)
        #expect(store.keysByRecency == ["c", "a"])
        _ = store.insert(9, for: "e", cost: 10)
        _ = store.insert(8, for: "c", cost: 5)
        #expect(store.keysByRecency == ["c", "e", "a"])
        #expect(store.count == 3)
        #expect(store.totalCost == 25)
    }

    @Test func tooCostlyInsertRemovesTheOldValue() {
        var store = LRUStore<String, Int>(capacity: 10)
        _ = store.insert(1, for: "a", cost: 5)
        let inserted = store.insert(2, for: "a", cost: 11)
        #expect(!inserted)
        #expect(store.count == 0)
        #expect(store.totalCost == 0)
        #expect(store.keysByRecency.isEmpty)
    }
}

@Suite("ResponseCache: invalidation by the typed agent")
struct ResponseCacheInvalidationTests {
    private func key(_ query: String) throws -> CacheKey {
        CacheKey(credential: "fp", query: try ListQuery.parse(Substring(query)))
    }

    /// Which pages a change to one agent drops: its own and those with no agent filter, whatever else the
    /// query says and however its agent was spelled; never another agent's, even one whose id starts the
    /// same, sorts first, or is equal only under Unicode equivalence.
    @Test func anAgentsChangeDropsItsPagesAndTheUnfilteredOnes() throws {
        let cache = ResponseCache(maxBytes: 1 << 20, ttlSeconds: 30, clock: TestClock())
        let queries = [
            "agent_id=a%20b": true,
            "page_size=5&agent_id=a+b": true,
            "cursor=c1&agent_id=a%20b&page_size=7": true,
            "": true,
            "page_size=9&cursor=z": true,
            "agent_id=a%20bc": false,
            "agent_id=a": false,
            "agent_id=": false,
            "agent_id=A%20B": false,
        ]
        for query in queries.keys {
            cache.store(page("p", at: cache.now()), for: try key(query))
        }
        #expect(cache.invalidate(agent: "a b") == queries.values.filter { $0 }.count)
        for (query, dropped) in queries {
            let found: Bool
            if case .miss = cache.lookup(try key(query)) { found = false } else { found = true }
            #expect(found == !dropped, "\(query)")
        }
    }

    @Test func anAgentComparesByItsBytes() throws {
        // "K" and KELVIN SIGN are equal to Swift's `==`, different to the upstream.
        let kelvin = try key("agent_id=%E2%84%AA")
        #expect(kelvin.agentID == "\u{212A}")
        #expect(!kelvin.concerns(agent: "K"))
        #expect(kelvin.concerns(agent: "\u{212A}"))
    }

    @Test func everyPageGoesWhenTheAgentCannotBeTold() throws {
        let cache = ResponseCache(maxBytes: 1 << 20, ttlSeconds: 30, clock: TestClock())
        for query in ["agent_id=x", "agent_id=y&page_size=3", ""] {
            cache.store(page("p", at: cache.now()), for: try key(query))
        }
        #expect(cache.invalidate(agent: nil) == 3)
        #expect(cache.statistics.entries == 0)
    }

    /// What the status page lists: agents by pages held, most first, ties by id; agents told apart by their
    /// bytes, as a purge tells them; the pages without a filter apart; the rest counted.
    @Test func theAgentsWithTheMostPagesComeFirst() throws {
        let cache = ResponseCache(maxBytes: 1 << 20, ttlSeconds: 30, clock: TestClock())
        let queries = [
            "agent_id=b", "agent_id=b&page_size=5", "agent_id=b&cursor=c",
            "agent_id=a", "agent_id=a&page_size=5", "agent_id=K", "agent_id=%E2%84%AA", "agent_id=z",
            "", "page_size=9",
        ]
        for query in queries { cache.store(page("p", at: cache.now()), for: try key(query)) }
        #expect(cache.maxBytes == 1 << 20)
        #expect(
            cache.pagesByAgent(limit: 3)
                == AgentPages(
                    agents: [.init(id: "b", pages: 3), .init(id: "a", pages: 2), .init(id: "K", pages: 1)],
                    moreAgents: 2,
                    unfiltered: 2
                )
        )
        let all = cache.pagesByAgent(limit: 10)
        #expect(all.agents.map(\.id.unicodeScalars.first!.value) == [98, 97, 75, 122, 0x212A])
        #expect(all.moreAgents == 0)
        #expect(cache.pagesByAgent(limit: 0) == AgentPages(agents: [], moreAgents: 5, unfiltered: 2))
    }

    /// A key made from a query's text reads its agent by parsing it, so tools get the same answer.
    @Test func aKeyFromTextKnowsItsAgent() {
        #expect(CacheKey(credential: "fp", query: "agent_id=a%20b&page_size=30").agentID == "a b")
        #expect(CacheKey(credential: "fp", query: "page_size=30").agentID == nil)
    }
}
