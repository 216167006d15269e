/// The page store of a replica with a shared tier: this replica's own cache in front, and every
/// invalidation (a forwarded write, an admin purge) passed on to the shared tier, so that the affected pages
/// disappear on every replica and a page fetched before it is never stored after it. Everything else is the
/// first tier's: the request path reaches the shared tier's pages through ``SharedTier`` itself.
public final class TieredPageStore: PageStore {
    /// This replica's own cache.
    public let first: ResponseCache
    public let shared: any SharedTier

    public init(first: ResponseCache, shared: any SharedTier) {
        self.first = first
        self.shared = shared
    }

    public func lookup(_ key: CacheKey) -> ResponseCache.Lookup { first.lookup(key) }

    @discardableResult
    public func store(_ page: CachedPage, for key: CacheKey) -> ResponseCache.StoreOutcome {
        first.store(page, for: key)
    }

    public func remove(_ key: CacheKey) { first.remove(key) }

    public func markRevalidationFailed(_ key: CacheKey) { first.markRevalidationFailed(key) }

    /// Drops the pages here at once and ends them on every other replica (in the background; when Redis
    /// cannot be told, only this replica's pages go, and the others' expire with their TTL).
    @discardableResult
    public func invalidate(agent: String?) -> Int {
        _ = shared.invalidate(agent: agent)
        return first.invalidate(agent: agent)
    }

    public func fits(bodyBytes: Int, for key: CacheKey) -> Bool { first.fits(bodyBytes: bodyBytes, for: key) }

    public var ttlSeconds: Int { first.ttlSeconds }

    public var staleSeconds: Int { first.staleSeconds }

    public func now() -> UInt64 { first.now() }

    public var statistics: ResponseCache.Statistics { first.statistics }

    public var maxBytes: Int { first.maxBytes }

    /// This replica's pages only: the shared tier's are not walked.
    public func pagesByAgent(limit: Int) -> AgentPages { first.pagesByAgent(limit: limit) }
}
