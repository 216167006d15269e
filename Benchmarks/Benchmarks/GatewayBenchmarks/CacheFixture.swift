import GatewayCore
import NIOCore

/// A ``ResponseCache`` filled before measuring, and keys to ask it for in turn.
///
/// Not thread-safe: each benchmark owns one and uses it from its measuring thread only.
final class CacheFixture {
    /// The cache under test.
    let cache: ResponseCache
    /// A page to store; every page shares these bytes, which the cache never copies.
    let page: CachedPage
    private let keys: [CacheKey]
    private var next = 0

    /// A cache holding the pages of `storedPageCount` keys, and `keyCount` keys to ask for or store in turn,
    /// starting at key `firstKey`. `maxBytes` of `nil` leaves room for every key's page in every shard.
    private init(storedPageCount: Int, keyCount: Int, firstKey: Int, maxBytes: Int? = nil) {
        let body = ByteBuffer(repeating: UInt8(ascii: " "), count: Self.bodyBytes)
        // Twice the bytes of all pages, since keys do not spread evenly over the shards.
        let roomForAll = 2 * keyCount * Self.pageCost
        let cache = ResponseCache(maxBytes: maxBytes ?? roomForAll, ttlSeconds: 3600, shardCount: 16)
        let page = CachedPage(body: body, contentType: "application/json", storedAt: cache.now())
        for index in 0..<storedPageCount {
            cache.store(page, for: Self.key(index))
        }
        // Keys built apart from the stored ones, as a request's key is, so that equality compares bytes
        // rather than finding one shared string buffer.
        self.keys = (0..<keyCount).map { Self.key((firstKey + $0) % keyCount) }
        self.cache = cache
        self.page = page
    }

    /// A cache holding `pageCount` pages, with their keys: every lookup hits.
    static func lookupsThatHit(pageCount: Int) -> CacheFixture {
        let fixture = CacheFixture(storedPageCount: pageCount, keyCount: pageCount, firstKey: 0)
        precondition(fixture.cache.statistics.entries == pageCount, "every page must stay in the cache")
        return fixture
    }

    /// A cache full with about `pageCount` pages, and twice as many keys, those of the stored pages last:
    /// every store is of a key the cache does not hold, and evicts the least recently used page.
    static func storesThatEvict(pageCount: Int) -> CacheFixture {
        CacheFixture(
            storedPageCount: pageCount,
            keyCount: 2 * pageCount,
            firstKey: pageCount,
            maxBytes: pageCount * pageCost
        )
    }

    /// About what a page of 30 invocations weighs.
    static let bodyBytes = 10 * 1024

    /// What the cache counts for one page: its body, its key (at most 64 bytes here) and the fixed overhead.
    static let pageCost = bodyBytes + 64 + ResponseCache.entryOverhead

    /// The key of page `index`.
    static func key(_ index: Int) -> CacheKey {
        CacheKey(credential: "k", query: "agent_id=a\(index)&page_size=30")
    }

    /// The next key, cycling through all of them.
    func nextKey() -> CacheKey {
        let key = keys[next]
        next = next + 1 == keys.count ? 0 : next + 1
        return key
    }
}
