/// Where pages are looked up, stored and dropped: the seam a shared tier implements (a store that keeps
/// ``ResponseCache`` as its first tier and shares pages and invalidations across replicas). The request
/// path asks only this.
public protocol PageStore: AnyObject, Sendable {
    /// Looks `key` up: fresh, stale (inside the stale window) or missing.
    func lookup(_ key: CacheKey) -> ResponseCache.Lookup

    /// Stores `page` under `key`, replacing any page there.
    @discardableResult
    func store(_ page: CachedPage, for key: CacheKey) -> ResponseCache.StoreOutcome

    /// Drops the page under `key`, if any.
    func remove(_ key: CacheKey)

    /// Notes that refreshing the page under `key` failed, so it is served as `stale-if-error`.
    func markRevalidationFailed(_ key: CacheKey)

    /// Drops the pages a change to `agent`'s invocations makes wrong (every page for `nil`); returns how many.
    @discardableResult
    func invalidate(agent: String?) -> Int

    /// Whether a page of `bodyBytes` under `key` is small enough to be stored.
    func fits(bodyBytes: Int, for key: CacheKey) -> Bool

    /// How long a page stays fresh, in seconds.
    var ttlSeconds: Int { get }

    /// How long after that a page may still be served stale, in seconds.
    var staleSeconds: Int { get }

    /// The clock pages are stamped with (``CachedPage/storedAt``).
    func now() -> UInt64

    /// Pages held, bytes and evictions.
    var statistics: ResponseCache.Statistics { get }
}

extension ResponseCache: PageStore {}
