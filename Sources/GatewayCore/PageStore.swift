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

    /// The most bytes the pages may take (as ``ResponseCache/Statistics/bytes`` counts them).
    var maxBytes: Int { get }

    /// The agents with the most pages held here, most first (ties by agent id), at most `limit` of them,
    /// and how many pages filter on no agent.
    func pagesByAgent(limit: Int) -> AgentPages
}

/// Pages held by agent filter, as the status page lists them.
public struct AgentPages: Sendable, Hashable {
    /// The agents with the most pages, most first: each agent id and its pages.
    public var agents: [Agent]
    /// Agents with pages beyond those listed.
    public var moreAgents: Int
    /// Pages without an agent filter (which a purge of any agent also drops).
    public var unfiltered: Int

    /// One agent's pages.
    public struct Agent: Sendable, Hashable {
        public var id: String
        public var pages: Int

        public init(id: String, pages: Int) {
            self.id = id
            self.pages = pages
        }
    }

    public init(agents: [Agent], moreAgents: Int, unfiltered: Int) {
        self.agents = agents
        self.moreAgents = moreAgents
        self.unfiltered = unfiltered
    }

    /// The `limit` agents with the most pages among `counts`, keyed by each agent id's UTF-8 bytes (`nil`:
    /// no agent filter). By bytes, as a purge compares them: two ids that Swift's `==` takes as equal
    /// (`K` and KELVIN SIGN) are two agents to the upstream.
    public init(counts: [[UInt8]?: Int], limit: Int) {
        let ranked = counts.compactMap { agent, pages in agent.map { (id: $0, pages: pages) } }
            .sorted { $0.pages != $1.pages ? $0.pages > $1.pages : $0.id.lexicographicallyPrecedes($1.id) }
        let limit = max(0, limit)
        self.init(
            agents: ranked.prefix(limit).map { Agent(id: String(decoding: $0.id, as: UTF8.self), pages: $0.pages) },
            moreAgents: max(0, ranked.count - limit),
            unfiltered: counts[nil] ?? 0
        )
    }
}

extension ResponseCache: PageStore {}
