import GatewayTesting
import NIOCore
import Testing

@testable import GatewayCore

/// What a lookup gave, in comparable form.
private enum Found: Equatable {
    case fresh(body: String, age: Int, ttlLeft: Int, revalidationFailed: Bool)
    case stale(body: String, age: Int, staleFor: Int, revalidationFailed: Bool)
    case miss
}

private func find(_ cache: ResponseCache, _ key: CacheKey) -> Found {
    switch cache.lookup(key) {
    case .fresh(let page, let age, let ttlLeft):
        .fresh(body: String(buffer: page.body), age: age, ttlLeft: ttlLeft, revalidationFailed: page.revalidationFailed)
    case .stale(let page, let age, let staleFor):
        .stale(
            body: String(buffer: page.body),
            age: age,
            staleFor: staleFor,
            revalidationFailed: page.revalidationFailed
        )
    case .miss:
        .miss
    }
}

private func page(_ body: String, at storedAt: UInt64) -> CachedPage {
    CachedPage(body: ByteBuffer(string: body), contentType: "application/json", storedAt: storedAt)
}

private func key(_ name: String) -> CacheKey { CacheKey(credential: "fp", query: "q=" + name) }

private func makeCache(ttl: Int = 30, stale: Int = 60, clock: ManualClock) -> ResponseCache {
    ResponseCache(maxBytes: 1 << 20, ttlSeconds: ttl, staleSeconds: stale, shardCount: 1, clock: clock)
}

@Suite("ResponseCache: the stale window")
struct ResponseCacheStaleTests {
    @Test func freshThenStaleThenGone() {
        let clock = ManualClock()
        let cache = makeCache(ttl: 30, stale: 60, clock: clock)
        cache.store(page("one", at: cache.now()), for: key("a"))
        #expect(find(cache, key("a")) == .fresh(body: "one", age: 0, ttlLeft: 30, revalidationFailed: false))

        clock.advance(seconds: 29.5)
        #expect(find(cache, key("a")) == .fresh(body: "one", age: 29, ttlLeft: 0, revalidationFailed: false))

        clock.advance(seconds: 0.5)
        #expect(find(cache, key("a")) == .stale(body: "one", age: 30, staleFor: 0, revalidationFailed: false))

        clock.advance(seconds: 10.75)
        #expect(find(cache, key("a")) == .stale(body: "one", age: 40, staleFor: 10, revalidationFailed: false))

        clock.advance(seconds: 48.75)
        #expect(find(cache, key("a")) == .stale(body: "one", age: 89, staleFor: 59, revalidationFailed: false))
        #expect(cache.statistics.entries == 1, "a stale page is still held")

        clock.advance(seconds: 0.5)
        #expect(find(cache, key("a")) == .miss)
        #expect(cache.statistics == ResponseCache.Statistics(entries: 0, bytes: 0, evictions: 0))

        // Gone for good: even a longer window does not bring it back.
        cache.staleSeconds = 600
        #expect(find(cache, key("a")) == .miss)
    }

    @Test func aPageStampedInThePastIsAgedFromItsStamp() {
        let clock = ManualClock()
        let cache = makeCache(ttl: 30, stale: 60, clock: clock)
        let second: UInt64 = 1_000_000_000
        cache.store(page("old", at: cache.now() - 45 * second), for: key("old"))
        cache.store(page("dead", at: cache.now() - 90 * second), for: key("dead"))
        #expect(find(cache, key("old")) == .stale(body: "old", age: 45, staleFor: 15, revalidationFailed: false))
        #expect(find(cache, key("dead")) == .miss)
        #expect(cache.statistics.entries == 1)
    }

    @Test func withNoStaleWindowAPageIsGoneWhenItStopsBeingFresh() {
        let clock = ManualClock()
        let cache = ResponseCache(maxBytes: 1 << 20, ttlSeconds: 30, shardCount: 1, clock: clock)
        #expect(cache.staleSeconds == 0)
        cache.store(page("one", at: cache.now()), for: key("a"))
        clock.advance(seconds: 30)
        #expect(find(cache, key("a")) == .miss)
        #expect(cache.statistics.entries == 0)
    }

    @Test func markRevalidationFailedFlagsThePageForLaterLookups() {
        let clock = ManualClock()
        let cache = makeCache(ttl: 30, stale: 60, clock: clock)
        cache.store(page("one", at: cache.now()), for: key("a"))
        cache.store(page("two", at: cache.now()), for: key("b"))
        clock.advance(seconds: 35)

        cache.markRevalidationFailed(key("a"))
        #expect(find(cache, key("a")) == .stale(body: "one", age: 35, staleFor: 5, revalidationFailed: true))
        clock.advance(seconds: 5)
        #expect(find(cache, key("a")) == .stale(body: "one", age: 40, staleFor: 10, revalidationFailed: true))
        #expect(find(cache, key("b")) == .stale(body: "two", age: 40, staleFor: 10, revalidationFailed: false))
    }

    @Test func markRevalidationFailedOnAnAbsentKeyDoesNothing() {
        let clock = ManualClock()
        let cache = makeCache(clock: clock)
        cache.store(page("one", at: cache.now()), for: key("a"))
        let before = cache.statistics

        cache.markRevalidationFailed(key("absent"))
        #expect(cache.statistics == before)
        #expect(find(cache, key("absent")) == .miss)
        #expect(find(cache, key("a")) == .fresh(body: "one", age: 0, ttlLeft: 30, revalidationFailed: false))
    }

    @Test func storingAgainClearsTheFlag() {
        let clock = ManualClock()
        let cache = makeCache(ttl: 30, stale: 60, clock: clock)
        cache.store(page("old", at: cache.now()), for: key("a"))
        clock.advance(seconds: 40)
        cache.markRevalidationFailed(key("a"))
        #expect(find(cache, key("a")) == .stale(body: "old", age: 40, staleFor: 10, revalidationFailed: true))

        cache.store(page("new", at: cache.now()), for: key("a"))
        #expect(find(cache, key("a")) == .fresh(body: "new", age: 0, ttlLeft: 30, revalidationFailed: false))
        clock.advance(seconds: 31)
        #expect(find(cache, key("a")) == .stale(body: "new", age: 31, staleFor: 1, revalidationFailed: false))
        #expect(cache.statistics.entries == 1)
    }

    @Test func staleSecondsCanBeChangedWhileRunning() {
        let clock = ManualClock()
        let cache = makeCache(ttl: 30, stale: 0, clock: clock)
        #expect(cache.staleSeconds == 0)
        cache.store(page("one", at: cache.now()), for: key("a"))

        cache.staleSeconds = 60
        #expect(cache.staleSeconds == 60)
        clock.advance(seconds: 40)
        #expect(find(cache, key("a")) == .stale(body: "one", age: 40, staleFor: 10, revalidationFailed: false))

        // Narrowing the window applies to pages already held.
        cache.staleSeconds = 5
        #expect(find(cache, key("a")) == .miss)
        #expect(cache.statistics.entries == 0)

        cache.staleSeconds = -5
        #expect(cache.staleSeconds == 0)
    }

    @Test(arguments: [(0, 0), (300, 300), (-1, 0)])
    func staleSecondsStartsAsConfigured(configured: Int, expected: Int) {
        let cache = ResponseCache(maxBytes: 1 << 20, ttlSeconds: 30, staleSeconds: configured, clock: ManualClock())
        #expect(cache.staleSeconds == expected)
    }
}
