import GatewayCore
import Logging
import NIOCore
import NIOHTTP1

/// Answers list requests: validates the query, serves fresh pages from the cache, serves stale ones while
/// one background refresh runs, and collapses concurrent misses for a key into one upstream request that
/// waits its turn at the governor.
///
/// It asks each decision of its one home: the ``PageStore`` for pages, the ``FlightCoordinator`` for
/// whether a miss leads, joins, finds the page after all or is refused by its budget, the
/// ``GovernedUpstream`` for the exchange, ``CachePolicy`` for what the answer does to the cache, and
/// ``CacheStatus`` for what the answer says.
public final class ListService: Sendable {
    /// The identity of this gateway, in `User-Agent` and `Cache-Status`.
    public static let cacheName = CacheStatus.cacheName
    /// How many query strings keep their cache keys (on each event loop), and the longest that does: at
    /// most about 6 MiB per loop.
    static let rememberedQueries = 8_192
    static let longestRememberedQuery = 256
    /// Sent upstream as `User-Agent`.
    public static let userAgent = "xi-gateway/\(GatewayVersion.current)"

    /// What one upstream fetch for a key came to; every request waiting on it is answered from this.
    enum FetchResult: Sendable {
        /// A 200 with JSON, and whether the cache kept it.
        case page(CachedPage, CacheStatus.Storage)
        /// A fresh page another replica stored in the shared tier (now in this replica's cache too).
        case sharedPage(CachedPage)
        /// Refused before the upstream was asked: the team's budget, shared by every replica, is spent.
        case refused(GatewayError)
        /// Any other upstream status, passed on as it came.
        case passThrough(UpstreamResponse)
        /// No usable answer.
        case failed(GatewayError)
    }

    /// A fetch's result and the upstream exchange behind it, if one happened.
    struct Fetched: Sendable {
        var result: FetchResult
        var upstreamStatus: Int?
        var upstreamNanoseconds: UInt64?
        /// Another replica's upstream request answered it (this replica followed).
        var followedAnotherReplica = false
    }

    private let cache: any PageStore
    private let upstream: GovernedUpstream
    private let flights: any FlightCoordinator<CacheKey, Fetched> = FlightTable<CacheKey, Fetched>()
    /// The keys of valid queries seen lately, by their text as received: parsing is most of a hit's work.
    private let queryKeys = BoundedMemo<RawQuery, CacheKey>(capacity: ListService.rememberedQueries)
    private let budgets: any BudgetLedger
    /// The tier replicas share, when there is one.
    private let shared: (any SharedTier)?
    /// Lookups and hits, counted by each thread apart: counters shared by every event loop would pass their
    /// cache line between cores on every hit.
    private let lookupCounts = PerThread { (lookups: 0, hits: 0) }
    /// The upstream key in force (a reload may replace it); ``PassthroughService`` shares it.
    public let upstreamKey: UpstreamKey
    private let waitLimit: TimeAmount
    private let allocator = ByteBufferAllocator()
    /// Pages are asked for and stored as gzip (`COMPRESSION`), so every list answer varies by
    /// `Accept-Encoding`.
    public let compression: Bool
    /// The most an upstream body may unpack to (`UPSTREAM_MAX_BODY_BYTES`).
    private let maxBodyBytes: Int
    /// Reads the wall clock for `Last-Modified`.
    private let clock: any CacheClock
    /// The identity forms of gzip pages that identity clients ask for.
    private let identityForms = IdentityForms()

    /// Creates the service. `apiKey` is sent upstream as `xi-api-key` and its fingerprint keys the cache;
    /// a request waiting for the upstream longer than `waitLimit` is answered 504 (the fetch goes on for
    /// the others); `clock` times upstream exchanges, reads `Retry-After` dates and dates pages.
    /// `compression`: pages are asked for, and stored, as gzip; `maxBodyBytes`: the most an upstream
    /// body may unpack to.
    public init(
        cache: any PageStore,
        upstream: any UpstreamClient,
        governor: any UpstreamSlots,
        apiKey: Secret,
        waitLimit: TimeAmount,
        logger: Logger,
        metrics: GatewayMetrics? = nil,
        budgets: any BudgetLedger = TeamBudgets(),
        clock: any CacheClock = SystemCacheClock(),
        shared: (any SharedTier)? = nil,
        compression: Bool = true,
        maxBodyBytes: Int = 8 * 1024 * 1024
    ) {
        self.compression = compression
        self.maxBodyBytes = maxBodyBytes
        self.clock = clock
        self.budgets = budgets
        self.shared = shared
        self.cache = cache
        let upstreamKey = UpstreamKey(apiKey)
        self.upstreamKey = upstreamKey
        self.upstream = GovernedUpstream(
            client: upstream,
            slots: governor,
            key: upstreamKey,
            clock: clock,
            metrics: metrics,
            logger: logger
        )
        self.waitLimit = waitLimit
    }

    /// Where the teams' upstream budgets are spent (the admin statistics and the `RateLimit` fields read
    /// it).
    public var budgetLedger: any BudgetLedger { budgets }

    /// Requests waiting on upstream fetches right now, and how many fetches they wait on.
    public var flightStatistics: (waiters: Int, flights: Int) { (flights.waiterCount, flights.flightCount) }

    /// Valid list requests that looked in the cache since start, and how many found a page (fresh or stale).
    public var lookupStatistics: (lookups: Int, hits: Int) {
        lookupCounts.reduce((lookups: 0, hits: 0)) { total, counts in
            (total.lookups + counts.lookups, total.hits + counts.hits)
        }
    }

    /// Who pays for the upstream requests a request causes: a team and its budget per minute.
    public struct Spender: Sendable {
        public var team: String
        /// `nil`: unlimited.
        public var perMinute: Int?

        public init(team: String, perMinute: Int?) {
            self.team = team
            self.perMinute = perMinute
        }
    }

    /// An answer now (a hit, a stale page, a refusal) or later (after the upstream).
    public enum Answer {
        case ready(GatewayResponse)
        case pending(EventLoopFuture<GatewayResponse>)
    }

    /// The answer to a list request whose query (after `?`) is `query`, as a future. Never fails: every
    /// problem is an answer. Call it on `eventLoop`; the future completes there.
    public func respond(
        toQuery query: Substring,
        on eventLoop: any EventLoop,
        correlation: Correlation? = nil,
        spender: Spender? = nil,
        freshness: FreshnessDemand = .none,
        negotiation: ContentNegotiation = .identity
    ) -> EventLoopFuture<GatewayResponse> {
        switch answer(
            toQuery: query,
            on: eventLoop,
            correlation: correlation,
            spender: spender,
            freshness: freshness,
            negotiation: negotiation
        ) {
        case .ready(let response): return eventLoop.makeSucceededFuture(response)
        case .pending(let future): return future
        }
    }

    /// The answer to a list request whose query (after `?`) is `query`: at once when it needs no upstream
    /// request, which spares a hit the cost of a future. Call it on `eventLoop`. `requestID` goes upstream
    /// with the request this one causes, if any; `spender`'s budget pays for it (joining another request's
    /// upstream request costs nothing). `freshness`: what the client's `Cache-Control` asks of the page;
    /// `negotiation`: which form of it, and whether the client's copy is current (a `304`).
    public func answer(
        toQuery query: Substring,
        on eventLoop: any EventLoop,
        correlation: Correlation? = nil,
        spender: Spender? = nil,
        freshness: FreshnessDemand = .none,
        negotiation: ContentNegotiation = .identity
    ) -> Answer {
        let key: CacheKey
        let remembers = query.utf8.count <= Self.longestRememberedQuery
        let credential = upstreamKey.credential
        if remembers, let known = queryKeys.value(for: RawQuery(query)), known.credential == credential {
            key = known
        } else {
            let listQuery: ListQuery
            do {
                listQuery = try ListQuery.parse(query)
            } catch {
                let gatewayError: GatewayError
                switch error {
                case .invalid(let issues): gatewayError = .invalidQuery(issues)
                case .malformed(let failure): gatewayError = .malformedQuery(failure)
                }
                return .ready(errorResponse(gatewayError))
            }
            key = CacheKey(credential: credential, query: listQuery)
            if remembers { queryKeys.remember(key, for: RawQuery(query)) }
        }
        let found = cache.lookup(key)
        if !freshness.isNone,
            let demanded = answer(
                demanding: freshness,
                found: found,
                key: key,
                on: eventLoop,
                correlation: correlation,
                spender: spender,
                negotiation: negotiation
            )
        {
            return demanded
        }
        lookupCounts.withLocal { counts in
            counts.lookups += 1
            if case .miss = found {} else { counts.hits += 1 }
        }
        switch found {
        case .fresh(let page, let age, let ttlLeft):
            var response = pageResponse(page, age: age, cacheStatus: .hit(ttl: ttlLeft), negotiation: negotiation)
            response.trace.cache = .hit
            return .ready(response)
        case .stale(let page, let age, let staleFor):
            // One refresh at a time, spent from the team's budget; the stale page is the answer either way.
            let sharedUp = shared?.isUp == true
            let entry: FlightEntry<Fetched, Never> = flights.enter(
                key,
                waitingOn: nil,
                recheck: { nil },
                spend: { sharedUp ? .allowed : spend(spender) }
            )
            var response = pageResponse(
                page,
                age: age,
                cacheStatus: .stale(staleFor: staleFor, revalidationFailed: page.revalidationFailed),
                negotiation: negotiation
            )
            response.trace.cache = .stale
            switch entry {
            case .lead:
                fetch(
                    key,
                    holdsPage: true,
                    on: eventLoop,
                    correlation: correlation,
                    sharedSpender: sharedUp ? spender : nil,
                    // Asked even while down: its entry answers "alone" at once, or is the probe that
                    // brings it back.
                    sharedTried: false
                )
                response.trace.causedUpstreamRequest = true
            case .refuse:
                response.trace.budgetRefused = true
            case .join, .hit:
                break
            }
            return .ready(response)
        case .miss:
            // Joining a request already under way is free; only a new upstream request is spent (across
            // replicas, by the one that leads it for all of them).
            let sharedUp = shared?.isUp == true
            let entry = flights.enter(
                key,
                waitingOn: eventLoop,
                recheck: { () -> (page: CachedPage, age: Int, ttlLeft: Int)? in
                    // A flight that ended since the lookup above stored its page: answer from it.
                    guard case .fresh(let page, let age, let ttlLeft) = cache.lookup(key) else { return nil }
                    return (page, age, ttlLeft)
                },
                spend: { sharedUp ? .allowed : spend(spender) }
            )
            switch entry {
            case .hit(let found):
                lookupCounts.withLocal { $0.hits += 1 }
                var response = pageResponse(
                    found.page,
                    age: found.age,
                    cacheStatus: .hit(ttl: found.ttlLeft),
                    negotiation: negotiation
                )
                response.trace.cache = .hit
                return .ready(response)
            case .join(let flight?):
                return .pending(answer(from: flight, leads: false, negotiation: negotiation, on: eventLoop))
            case .lead(let flight?):
                fetch(
                    key,
                    holdsPage: false,
                    on: eventLoop,
                    correlation: correlation,
                    sharedSpender: sharedUp ? spender : nil,
                    // Asked even while down: its entry answers "alone" at once, or is the probe that
                    // brings it back.
                    sharedTried: false
                )
                return .pending(answer(from: flight, leads: true, negotiation: negotiation, on: eventLoop))
            case .refuse(let retryAfter):
                let error = GatewayError.teamBudgetSpent(retryAfterSeconds: retryAfter)
                var response = errorResponse(error)
                response.trace.budgetRefused = true
                return .ready(response)
            case .join(nil), .lead(nil):
                // Only a request that does not wait gets these; this one waits.
                return .ready(errorResponse(.badUpstreamResponse))
            }
        }
    }

    /// The answer when the client's `Cache-Control` asks more of the page than the cache's own rules, or
    /// `nil` when the page found (or the miss) already serves it and the usual path answers.
    ///
    /// A page older than the client takes is fetched again, like a miss that holds a page: concurrent such
    /// requests join one upstream request, spent from the team's budget, whose answer replaces the page.
    /// Over budget, the page held is the answer (``CacheStatus/heldOverBudget(ttl:)``). With
    /// `only-if-cached`, nothing is fetched: no page the client takes is a 504.
    private func answer(
        demanding demand: FreshnessDemand,
        found: ResponseCache.Lookup,
        key: CacheKey,
        on eventLoop: any EventLoop,
        correlation: Correlation?,
        spender: Spender?,
        negotiation: ContentNegotiation
    ) -> Answer? {
        let held: (page: CachedPage, age: Int)?
        switch found {
        case .fresh(let page, let age, _), .stale(let page, let age, _): held = (page, age)
        case .miss: held = nil
        }
        // With a max-age, only a fresh page young enough: without max-stale the client takes no stale one
        // (RFC 9111, section 5.2.1.1). With only-if-cached alone, what the cache would serve.
        let takesHeld: Bool
        switch (found, demand.maxAge) {
        case (.fresh(_, let age, _), let maxAge?): takesHeld = maxAge > 0 && age <= maxAge
        case (.stale, _?), (.miss, _): takesHeld = false
        case (.fresh, nil), (.stale, nil): takesHeld = true
        }
        if takesHeld {
            // The cache's own rules serve it; only a stale page's refresh is skipped for only-if-cached.
            guard demand.onlyIfCached, case .stale(let page, let age, let staleFor) = found else { return nil }
            var response = pageResponse(
                page,
                age: age,
                cacheStatus: .staleOnlyIfCached(staleFor: staleFor),
                negotiation: negotiation
            )
            response.trace.cache = .stale
            count(hit: true)
            return .ready(response)
        }
        if demand.onlyIfCached {
            count(hit: false)
            let error = GatewayError.notCached
            var response = errorResponse(error)
            response.cacheStatus = .refused(detail: error.shortDescription)
            return .ready(response)
        }
        guard let held else { return nil }
        let maxAge = demand.maxAge ?? 0
        // A page the cache gives after all (a flight just stored one, or the budget keeps the old) is a hit.
        var fromCache = false
        defer { count(hit: fromCache) }
        let sharedUp = shared?.isUp == true
        let entry = flights.enter(
            key,
            waitingOn: eventLoop,
            recheck: { () -> (page: CachedPage, age: Int, ttlLeft: Int)? in
                // A flight that ended since the lookup stored a page young enough for this client.
                guard maxAge > 0, case .fresh(let page, let age, let ttlLeft) = self.cache.lookup(key), age <= maxAge
                else { return nil }
                return (page, age, ttlLeft)
            },
            spend: { sharedUp ? .allowed : self.spend(spender) }
        )
        switch entry {
        case .hit(let found):
            fromCache = true
            var response = pageResponse(
                found.page,
                age: found.age,
                cacheStatus: .hit(ttl: found.ttlLeft),
                negotiation: negotiation
            )
            response.trace.cache = .hit
            return .ready(response)
        case .join(let flight?):
            return .pending(
                answer(
                    from: flight,
                    leads: false,
                    forward: .request,
                    held: held.page,
                    negotiation: negotiation,
                    on: eventLoop
                )
            )
        case .lead(let flight?):
            fetch(
                key,
                holdsPage: true,
                on: eventLoop,
                correlation: correlation,
                sharedSpender: sharedUp ? spender : nil,
                sharedTried: false,
                freshMilliseconds: max(1, maxAge * 1000)
            )
            return .pending(
                answer(
                    from: flight,
                    leads: true,
                    forward: .request,
                    held: held.page,
                    negotiation: negotiation,
                    on: eventLoop
                )
            )
        case .refuse:
            fromCache = true
            var response = heldResponse(held.page, negotiation: negotiation)
            response.trace.budgetRefused = true
            return .ready(response)
        case .join(nil), .lead(nil):
            // Only a request that does not wait gets these; this one waits.
            return .ready(errorResponse(.badUpstreamResponse))
        }
    }

    /// Counts one lookup (and a hit) for the statistics' hit ratio.
    private func count(hit: Bool) {
        lookupCounts.withLocal { counts in
            counts.lookups += 1
            if hit { counts.hits += 1 }
        }
    }

    /// The page held for a client that asked for a newer one, when the team's budget cannot pay for it.
    private func heldResponse(_ page: CachedPage, negotiation: ContentNegotiation) -> GatewayResponse {
        let age = Int((cache.now() &- page.storedAt) / 1_000_000_000)
        let ttl = cache.ttlSeconds - age
        var response = pageResponse(page, age: age, cacheStatus: .heldOverBudget(ttl: ttl), negotiation: negotiation)
        response.trace.cache = ttl > 0 ? .hit : .stale
        return response
    }

    /// Spends one upstream request from `spender`'s budget; free when no team is set up.
    private func spend(_ spender: Spender?) -> BudgetDecision {
        guard let spender else { return .allowed }
        return budgets.spend(team: spender.team, perMinute: spender.perMinute)
    }

    /// The answer from a flight's result, or 504 once `waitLimit` has passed. `forward`: why the upstream
    /// was asked; `held`: the page held for a client that asked for a newer one, its answer when the team's
    /// budget refused the fetch.
    private func answer(
        from flight: EventLoopFuture<Fetched>,
        leads: Bool,
        forward: CacheStatus.Forward = .miss,
        held: CachedPage? = nil,
        negotiation: ContentNegotiation,
        on eventLoop: any EventLoop
    ) -> EventLoopFuture<GatewayResponse> {
        let answer = eventLoop.makePromise(of: GatewayResponse.self)
        let once = AnswerOnce()
        let timeout = eventLoop.assumeIsolated().scheduleTask(in: waitLimit) {
            guard once.claim() else { return }
            let error = GatewayError.upstreamTimeout
            var response = self.errorResponse(error)
            response.cacheStatus = .failed(detail: error.shortDescription, collapsed: false, forward: forward)
            response.trace.cache = leads ? .miss : .coalesced
            answer.succeed(response)
        }
        flight.assumeIsolated().whenComplete { result in
            timeout.cancel()
            guard once.claim() else { return }
            switch result {
            case .success(let fetched):
                if case .refused = fetched.result, let held {
                    var response = self.heldResponse(held, negotiation: negotiation)
                    response.trace.budgetRefused = true
                    return answer.succeed(response)
                }
                var response = self.response(
                    for: fetched.result,
                    collapsed: !leads || fetched.followedAnotherReplica,
                    forward: forward,
                    negotiation: negotiation
                )
                switch fetched.result {
                case .sharedPage: response.trace.cache = .hit
                case .refused: response.trace.budgetRefused = true
                default: response.trace.cache = leads ? .miss : .coalesced
                }
                response.trace.causedUpstreamRequest = leads && fetched.upstreamStatus != nil
                response.trace.upstreamStatus = fetched.upstreamStatus
                response.trace.upstreamNanoseconds = fetched.upstreamNanoseconds
                answer.succeed(response)
            case .failure:
                answer.succeed(self.errorResponse(.badUpstreamResponse))
            }
        }
        return answer.futureResult
    }

    /// The local leader's work: with a shared tier, a page another replica stored, or another replica's
    /// upstream request, or this one leading for every replica; else the governed upstream exchange, the
    /// cache updated as ``CachePolicy`` says. Then the flight is completed for every waiter. `holdsPage`: a
    /// stale page is held (this is its refresh). `sharedSpender`: who pays when this replica leads for all
    /// (the shared tier was up when the request came, so no local budget was spent). `sharedTried`: the
    /// shared tier is not to be asked (again).
    private func fetch(
        _ key: CacheKey,
        holdsPage: Bool,
        on eventLoop: any EventLoop,
        correlation: Correlation?,
        sharedSpender: Spender? = nil,
        sharedTried: Bool = true,
        attemptsLeft: Int = 3,
        freshMilliseconds: Int? = nil
    ) {
        guard let shared, !sharedTried, attemptsLeft > 0 else {
            if let sharedSpender, case .denied(let retryAfter) = spend(sharedSpender) {
                // The request counted on the shared budget, which cannot be asked: the replica's own decides.
                return flights.complete(key, with: .success(Self.refusal(retryAfter)))
            }
            return fetchAlone(key, holdsPage: holdsPage, on: eventLoop, correlation: correlation) {
                self.flights.complete(key, with: .success($0))
            }
        }
        let fresh =
            freshMilliseconds.map { min($0, max(1, cache.ttlSeconds * 1000)) } ?? max(1, cache.ttlSeconds * 1000)
        shared.enter(key, freshMilliseconds: fresh, on: eventLoop).whenSuccess { entry in
            // This replica asks the upstream itself: the tier says so, or its page is not usable.
            let fetchHere: @Sendable () -> Void = {
                self.fetch(
                    key,
                    holdsPage: holdsPage,
                    on: eventLoop,
                    correlation: correlation,
                    sharedSpender: sharedSpender
                )
            }
            switch entry {
            case .page(let found):
                guard let fetched = self.adopt(found, for: key) else { return fetchHere() }
                self.flights.complete(key, with: .success(fetched))
            case .lead(let flight):
                self.lead(
                    flight,
                    shared: shared,
                    holdsPage: holdsPage,
                    on: eventLoop,
                    correlation: correlation,
                    spender: sharedSpender
                )
            case .follow(let lockLeft):
                shared.outcome(of: key, within: lockLeft + .seconds(1), on: eventLoop).whenSuccess { outcome in
                    switch outcome {
                    case .page(let found)?:
                        // Answered as the upstream's page it is, collapsed into the other replica's request.
                        guard var fetched = self.adopt(found, for: key) else { return fetchHere() }
                        if case .sharedPage(let page) = fetched.result { fetched.result = .page(page, .stored) }
                        fetched.followedAnotherReplica = true
                        self.flights.complete(key, with: .success(fetched))
                    case .answer(let status, let contentType, let body)?:
                        let response = UpstreamResponse(
                            status: status,
                            headers: HTTPHeaders(contentType.isEmpty ? [] : [("Content-Type", contentType)]),
                            body: body
                        )
                        var fetched = Fetched(result: .passThrough(response))
                        fetched.followedAnotherReplica = true
                        self.flights.complete(key, with: .success(fetched))
                    case nil:
                        // The leader died or gave up, or Redis failed: enter again (perhaps to lead).
                        self.fetch(
                            key,
                            holdsPage: holdsPage,
                            on: eventLoop,
                            correlation: correlation,
                            sharedSpender: sharedSpender,
                            sharedTried: !shared.isUp,
                            attemptsLeft: attemptsLeft - 1,
                            freshMilliseconds: freshMilliseconds
                        )
                    }
                }
            case .alone:
                fetchHere()
            }
        }
    }

    /// Leads `flight` for every replica: the shared budget spent, the upstream asked, its answer stored or
    /// passed to the other replicas' waiters, and this replica's waiters answered without waiting for Redis.
    private func lead(
        _ flight: SharedFlight,
        shared: any SharedTier,
        holdsPage: Bool,
        on eventLoop: any EventLoop,
        correlation: Correlation?,
        spender: Spender?
    ) {
        let key = flight.key
        let budget: EventLoopFuture<SharedBudget?>
        if let spender, let perMinute = spender.perMinute {
            budget = shared.spend(team: spender.team, perMinute: perMinute, on: eventLoop)
        } else {
            budget = eventLoop.makeSucceededFuture(SharedBudget(decision: .allowed, tokensLeft: 0))
        }
        budget.whenSuccess { answer in
            var decision = answer?.decision
            if let spender {
                if let answer, let perMinute = spender.perMinute {
                    self.budgets.settle(team: spender.team, perMinute: perMinute, shared: answer)
                } else {
                    // An unlimited team (counted, never refused), or Redis could not say: the local ledger.
                    decision = self.spend(spender)
                }
            }
            if case .denied(let retryAfter) = decision {
                _ = shared.abandon(flight, on: eventLoop)
                return self.flights.complete(key, with: .success(Self.refusal(retryAfter)))
            }
            self.fetchAlone(key, holdsPage: holdsPage, on: eventLoop, correlation: correlation) { fetched in
                switch fetched.result {
                case .page(let page, _) where page.body.readableBytes > Self.largestSharedPage:
                    // Too large to pass through Redis: the other replicas' waiters ask for it themselves.
                    _ = shared.abandon(flight, on: eventLoop)
                case .page(let page, let storage):
                    // Not stored here (a TTL of 0, too large for this cache): passed to the waiters only.
                    let life = storage == .stored ? (self.cache.ttlSeconds + self.cache.staleSeconds) * 1000 : 0
                    _ = shared.finish(
                        flight,
                        status: 200,
                        body: page.body,
                        contentType: page.contentType,
                        lifeMilliseconds: life,
                        on: eventLoop
                    )
                case .passThrough(let response):
                    _ = shared.finish(
                        flight,
                        status: response.status,
                        body: response.body,
                        contentType: response.headers.first(name: "content-type") ?? "",
                        lifeMilliseconds: 0,
                        on: eventLoop
                    )
                case .failed, .refused, .sharedPage:
                    // No answer to share: the other replicas' waiters try again.
                    _ = shared.abandon(flight, on: eventLoop)
                }
                self.flights.complete(key, with: .success(fetched))
            }
        }
    }

    /// Pages larger than this stay in the replica that fetched them.
    static let largestSharedPage = 1 << 20

    /// A budget refusal as a flight's result.
    private static func refusal(_ retryAfter: Int) -> Fetched {
        Fetched(result: .refused(.teamBudgetSpent(retryAfterSeconds: retryAfter)))
    }

    /// A page from the shared tier, kept in this replica's cache as if fetched when the upstream answered it.
    /// Replicas store gzip or identity (`COMPRESSION` may differ between them): a gzip body (its magic
    /// bytes; JSON never starts so) is unpacked within `UPSTREAM_MAX_BODY_BYTES`; `nil` when it does not
    /// unpack (this replica then asks the upstream itself).
    private func adopt(_ found: SharedPage, for key: CacheKey) -> Fetched? {
        let isGzip =
            found.body.readableBytes >= 2
            && found.body.getInteger(at: found.body.readerIndex, as: UInt16.self) == 0x1F8B
        var response = UpstreamResponse(status: 200, headers: HTTPHeaders(), body: found.body)
        if isGzip { response.headers.add(name: "Content-Encoding", value: "gzip") }
        guard case .success(let identity) = Self.identityBody(of: response, limit: maxBodyBytes) else {
            upstream.logger.warning("a shared page does not unpack; not used", metadata: ["query": "\(key.query)"])
            return nil
        }
        let page = page(
            identity: identity.body,
            gzip: isGzip && identity.members == 1 ? found.body : nil,
            previous: nil,
            contentType: found.contentType.isEmpty ? "application/json" : found.contentType,
            ageNanoseconds: UInt64(max(0, found.ageMilliseconds)) * 1_000_000
        )
        cache.store(page, for: key)
        return Fetched(result: .sharedPage(page))
    }

    /// This replica's own upstream exchange, the cache updated as ``CachePolicy`` says; `done` gets what it
    /// came to.
    private func fetchAlone(
        _ key: CacheKey,
        holdsPage: Bool,
        on eventLoop: any EventLoop,
        correlation: Correlation?,
        done: @escaping @Sendable (Fetched) -> Void
    ) {
        let request = upstream.request(
            target: Route.listPath + "?" + key.query,
            correlation: correlation,
            acceptsGzip: compression
        )
        upstream.execute(request, on: eventLoop, context: ["query": "\(key.query)"]).map { exchange in
            self.settle(exchange, key: key, holdsPage: holdsPage)
        }.whenComplete { result in
            switch result {
            case .success(let fetched): done(fetched)
            case .failure: done(Fetched(result: .failed(.badUpstreamResponse)))
            }
        }
    }

    /// Applies an upstream exchange to the cache, as ``CachePolicy`` decides, and says what it came to.
    ///
    /// The upstream may answer in gzip (asked for unless `COMPRESSION=off`): the body is unpacked within
    /// `UPSTREAM_MAX_BODY_BYTES` first, so a 200 is checked as JSON and any other status is passed on as
    /// identity. A body that does not unpack (cut, damaged, a bomb past the bound, a coding not asked for)
    /// is an unusable answer: a 502, nothing stored, a page held kept as stale-if-error.
    private func settle(_ exchange: GovernedUpstream.Exchange, key: CacheKey, holdsPage: Bool) -> Fetched {
        var exchange = exchange
        var sentGzip: ByteBuffer?
        var unusable = false
        if case .success(var response) = exchange.result {
            switch Self.identityBody(of: response, limit: maxBodyBytes) {
            case .success(let identity):
                // Kept as sent only when it is one member: some clients (httpx) read no further.
                if identity.gzip, identity.members == 1 { sentGzip = response.body }
                response.body = identity.body
            case .failure(let failure) where response.status != 200:
                // The status still says what happened (a 429's Retry-After, a 404 that drops the page).
                upstream.logger.warning(
                    "upstream sent a body that does not unpack; passed on without it",
                    metadata: ["query": "\(key.query)", "status": "\(response.status)", "reason": "\(failure)"]
                )
                response.body = ByteBuffer()
            case .failure(let failure):
                upstream.logger.warning(
                    "upstream sent a page that does not unpack; not used",
                    metadata: ["query": "\(key.query)", "status": "\(response.status)", "reason": "\(failure)"]
                )
                unusable = true
            }
            response.headers.remove(name: "content-encoding")
            exchange.result = .success(response)
        }
        let outcome: CachePolicy.Outcome
        var made: CachedPage?
        switch exchange.result {
        case .success(let response) where !unusable:
            let isPage = response.status == 200
            let isJSON = isPage && response.body.withUnsafeReadableBytes { JSONValidator.isValid($0) }
            if isJSON { made = page(from: response, sentGzip: sentGzip, replacing: holdsPage ? key : nil) }
            outcome = .answered(
                status: response.status,
                bodyIsJSON: isJSON,
                fits: made.map { cache.fits(bodyBytes: $0.byteCount, for: key) } ?? false
            )
        case .success, .failure:
            outcome = .failed
        }
        let decision = CachePolicy.decide(outcome, ttlSeconds: cache.ttlSeconds, holdsPage: holdsPage)
        var storage = CacheStatus.Storage.stored
        switch decision.cache {
        case .store:
            if let made, cache.store(made, for: key) == .tooLarge { storage = .tooLarge }
        case .drop: cache.remove(key)
        case .keepStale: cache.markRevalidationFailed(key)
        case .leave: break
        }
        let result: FetchResult
        switch (decision.answer, exchange.result) {
        case (_, .success) where unusable:
            result = .failed(.badUpstreamResponse)
        case (.page(let decided), .success):
            if decision.cache != .store { storage = decided }
            guard let made else {
                result = .failed(.badUpstreamResponse)
                break
            }
            result = .page(made, storage)
        case (.passOn, .success(let response)):
            result = .passThrough(response)
        case (_, .failure(let error)):
            result = .failed(error)
        case (.fail, .success):
            upstream.logger.warning(
                "upstream sent a 200 that is not JSON; not stored",
                metadata: ["query": "\(key.query)"]
            )
            result = .failed(.badUpstreamResponse)
        }
        return Fetched(
            result: result,
            upstreamStatus: exchange.status,
            upstreamNanoseconds: exchange.status == nil ? nil : exchange.nanoseconds
        )
    }

    /// An upstream body as identity bytes, unpacked within `limit` when its `Content-Encoding` is gzip
    /// (`gzip` says it was, `members` how many gzip members it held); any other coding is refused. An empty
    /// body is empty whatever its coding.
    static func identityBody(
        of response: UpstreamResponse,
        limit: Int
    ) -> Result<(body: ByteBuffer, gzip: Bool, members: Int), Gzip.Failure> {
        let codings = response.headers["content-encoding"].flatMap { $0.split(separator: ",") }
            .map { $0.filter { $0 != " " && $0 != "\t" }.lowercased() }.filter { !$0.isEmpty && $0 != "identity" }
        if codings.isEmpty || response.body.readableBytes == 0 { return .success((response.body, false, 0)) }
        guard codings == ["gzip"] || codings == ["x-gzip"] else {
            return .failure(.corrupt("a content coding that was not asked for: \(codings.joined(separator: ", "))"))
        }
        do {
            let unpacked = try response.body.withUnsafeReadableBytes { raw throws(Gzip.Failure) in
                try Gzip.unpack(raw, limit: limit)
            }
            return .success((ByteBuffer(bytes: unpacked.bytes), true, unpacked.members))
        } catch {
            return .failure(error)
        }
    }

    /// A page of the upstream's 200 (identity bytes in `response`): stored as gzip unless `COMPRESSION=off`
    /// (the upstream's own gzip, `sentGzip`, when it sent one, else the identity compressed once, here),
    /// or as identity when gzip would not be smaller. Its bytes are compacted: a body read in pieces keeps
    /// no spare capacity in the cache. The page held for `key` (a refresh's), if any, lends its
    /// `Last-Modified` when the bytes did not change.
    private func page(from response: UpstreamResponse, sentGzip: ByteBuffer?, replacing key: CacheKey?) -> CachedPage {
        let contentType = response.headers.first(name: "content-type") ?? "application/json"
        var previous: CachedPage?
        switch key.map(cache.lookup) {
        case .fresh(let page, _, _)?, .stale(let page, _, _)?: previous = page
        case .miss?, nil: previous = nil
        }
        return page(
            identity: response.body,
            gzip: sentGzip,
            previous: previous,
            contentType: contentType,
            ageNanoseconds: 0
        )
    }

    /// A page of `identity` (and its gzip form, when at hand) as this replica stores pages, that the upstream
    /// gave `ageNanoseconds` ago. A `previous` page with the same stored bytes keeps its `Last-Modified`: the
    /// page did not change, so a client's `If-Modified-Since` still holds.
    private func page(
        identity: ByteBuffer,
        gzip: ByteBuffer?,
        previous: CachedPage?,
        contentType: String,
        ageNanoseconds: UInt64
    ) -> CachedPage {
        let now = cache.now()
        let storedAt = now > ageNanoseconds ? now - ageNanoseconds : 0
        var stored = identity
        var coding = ContentCoding.identity
        if compression,
            let packed = gzip ?? identity.withUnsafeReadableBytes({ Gzip.compress($0) }).map({ ByteBuffer(bytes: $0) }),
            packed.readableBytes < identity.readableBytes
        {
            stored = packed
            coding = .gzip
        }
        var modifiedAt = clock.secondsSince1970() - Int(ageNanoseconds / 1_000_000_000)
        if let previous, previous.coding == coding, previous.body == stored { modifiedAt = previous.modifiedAt }
        return CachedPage(
            body: stored.compacted(),
            coding: coding,
            identityByteCount: identity.readableBytes,
            contentType: contentType,
            storedAt: storedAt,
            modifiedAt: modifiedAt
        )
    }

    private func response(
        for result: FetchResult,
        collapsed: Bool,
        forward: CacheStatus.Forward = .miss,
        negotiation: ContentNegotiation
    ) -> GatewayResponse {
        switch result {
        case .sharedPage(let page):
            let age = Int((cache.now() &- page.storedAt) / 1_000_000_000)
            return pageResponse(
                page,
                age: age,
                cacheStatus: .sharedHit(ttl: max(0, cache.ttlSeconds - age)),
                negotiation: negotiation
            )
        case .refused(let error):
            return errorResponse(error)
        case .page(let page, let storage):
            let age = Int((cache.now() &- page.storedAt) / 1_000_000_000)
            return pageResponse(
                page,
                age: age,
                cacheStatus: .fetched(storage, collapsed: collapsed, forward: forward),
                negotiation: negotiation
            )
        case .passThrough(let response):
            var answer = GatewayResponse(passingOn: response)
            answer.cacheStatus = .passedOn(status: response.status, collapsed: collapsed, forward: forward)
            answer.age = 0
            return answer
        case .failed(let error):
            var response = errorResponse(error)
            response.cacheStatus = .failed(detail: error.shortDescription, collapsed: collapsed, forward: forward)
            return response
        }
    }

    /// `page` as the client asked for it: the stored bytes to a client that takes their coding, the
    /// identity form to any other (from ``IdentityForms``, unpacked at most once per thread for a page
    /// asked for often), or `304 Not Modified` with the form's validators when the client's copy is current.
    private func pageResponse(
        _ page: CachedPage,
        age: Int,
        cacheStatus: CacheStatus,
        negotiation: ContentNegotiation
    ) -> GatewayResponse {
        let form = page.coding(acceptingGzip: negotiation.acceptsGzip)
        var response: GatewayResponse
        if negotiation.isConditional,
            negotiation.isNotModified(entityTag: page.entityTag(for: form), lastModified: page.modifiedAt)
        {
            response = GatewayResponse(status: .notModified, body: ByteBuffer())
            response.headerLines = page.headerLines(for: form, notModified: true)
        } else if form == page.coding {
            response = GatewayResponse(status: .ok, body: page.body)
            response.headerLines = page.headerLines(for: form)
        } else if let identity = identityForms.identity(of: page) {
            response = GatewayResponse(status: .ok, body: identity)
            response.headerLines = page.headerLines(for: form)
        } else {
            return errorResponse(.badUpstreamResponse)
        }
        response.cacheStatus = cacheStatus
        response.age = age
        return response
    }

    /// The gateway's own error, refused before the cache was used (the callers after it say otherwise).
    private func errorResponse(_ error: GatewayError) -> GatewayResponse {
        var response = error.response(allocator: allocator)
        response.cacheStatus = .refused(detail: error.shortDescription)
        response.age = 0
        return response
    }
}

/// Makes sure a request is answered once, by whichever comes first: its fetch or its deadline. Both run
/// on the request's event loop, so no lock is needed.
private final class AnswerOnce {
    private var answered = false

    func claim() -> Bool {
        defer { answered = true }
        return !answered
    }
}
