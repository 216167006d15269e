import GatewayCore
import Logging
import NIOCore
import NIOHTTP1

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Answers list requests: validates the query, serves fresh pages from the cache, serves stale ones while
/// one background refresh runs, and collapses concurrent misses for a key into one upstream request that
/// waits its turn at the ``UpstreamGovernor``.
public final class ListService: Sendable {
    /// The identity of this gateway, in `User-Agent` and `Cache-Status`.
    public static let cacheName = "xi-gateway"
    /// How many query strings keep their cache keys (on each event loop), and the longest that does: at
    /// most about 6 MiB per loop.
    static let rememberedQueries = 8_192
    static let longestRememberedQuery = 256
    /// Sent upstream as `User-Agent`.
    public static let userAgent = "xi-gateway/\(GatewayVersion.current)"

    /// What one upstream fetch for a key came to; every request waiting on it is answered from this.
    enum FetchResult: Sendable {
        /// A 200 with JSON, and what the cache did with it (`stored`, or a `detail=` reason).
        case page(CachedPage, storage: String)
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
    }

    private let cache: ResponseCache
    private let upstream: any UpstreamClient
    private let governor: UpstreamGovernor
    private let flights = SingleFlight<CacheKey, Fetched>()
    /// The keys of valid queries seen lately, by their text as received: parsing is most of a hit's work.
    private let queryKeys = BoundedMemo<RawQuery, CacheKey>(capacity: ListService.rememberedQueries)
    private let metrics: GatewayMetrics?
    private let budgets: TeamBudgets
    /// Lookups and hits, counted by each thread apart: counters shared by every event loop would pass their
    /// cache line between cores on every hit.
    private let lookupCounts = PerThread { (lookups: 0, hits: 0) }
    private let apiKey: Secret
    private let credential: CredentialID
    private let waitLimit: TimeAmount
    private let wallClock: @Sendable () -> Int
    private let logger: Logger
    private let allocator = ByteBufferAllocator()

    /// Creates the service. `apiKey` is sent upstream as `xi-api-key` and its fingerprint keys the cache;
    /// a request waiting for the upstream longer than `waitLimit` is answered 504 (the fetch goes on for
    /// the others); `wallClock` gives seconds since 1970, for `Retry-After` dates.
    public init(
        cache: ResponseCache,
        upstream: any UpstreamClient,
        governor: UpstreamGovernor,
        apiKey: Secret,
        waitLimit: TimeAmount,
        logger: Logger,
        metrics: GatewayMetrics? = nil,
        budgets: TeamBudgets = TeamBudgets(),
        wallClock: @escaping @Sendable () -> Int = { Int(time(nil)) }
    ) {
        self.metrics = metrics
        self.budgets = budgets
        self.cache = cache
        self.upstream = upstream
        self.governor = governor
        self.apiKey = apiKey
        self.credential = CredentialID(apiKey)
        self.waitLimit = waitLimit
        self.wallClock = wallClock
        self.logger = logger
    }

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
        requestID: String? = nil,
        spender: Spender? = nil
    ) -> EventLoopFuture<GatewayResponse> {
        switch answer(toQuery: query, on: eventLoop, requestID: requestID, spender: spender) {
        case .ready(let response): return eventLoop.makeSucceededFuture(response)
        case .pending(let future): return future
        }
    }

    /// The answer to a list request whose query (after `?`) is `query`: at once when it needs no upstream
    /// request, which spares a hit the cost of a future. Call it on `eventLoop`. `requestID` goes upstream
    /// with the request this one causes, if any; `spender`'s budget pays for it (joining another request's
    /// upstream request costs nothing).
    public func answer(
        toQuery query: Substring,
        on eventLoop: any EventLoop,
        requestID: String? = nil,
        spender: Spender? = nil
    ) -> Answer {
        let key: CacheKey
        let remembers = query.utf8.count <= Self.longestRememberedQuery
        if remembers, let known = queryKeys.value(for: RawQuery(query)) {
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
                return .ready(errorResponse(gatewayError, cacheStatus: nil))
            }
            key = CacheKey(credential: credential, query: listQuery)
            if remembers { queryKeys.remember(key, for: RawQuery(query)) }
        }
        let found = cache.lookup(key)
        lookupCounts.withLocal { counts in
            counts.lookups += 1
            if case .miss = found {} else { counts.hits += 1 }
        }
        switch found {
        case .fresh(let page, let age, let ttlLeft):
            var response = pageResponse(page, age: age, cacheStatus: .hit(ttl: ttlLeft))
            response.trace.cache = .hit
            return .ready(response)
        case .stale(let page, let age, let staleFor):
            var refused = false
            var started = false
            if !flights.isRunning(key) {
                if let spender, case .denied = budgets.spend(team: spender.team, perMinute: spender.perMinute) {
                    refused = true
                } else {
                    started = refreshInBackground(key, on: eventLoop, requestID: requestID)
                }
            }
            let detail = page.revalidationFailed ? "stale-if-error" : "stale-while-revalidate"
            var response = pageResponse(
                page,
                age: age,
                cacheStatus: .value("\(Self.cacheName); hit; ttl=-\(staleFor); detail=\(detail)")
            )
            response.trace.cache = .stale
            response.trace.budgetRefused = refused
            response.trace.causedUpstreamRequest = started
            return .ready(response)
        case .miss:
            guard let spender else { return .pending(waitForFetch(key, on: eventLoop, requestID: requestID)) }
            // Joining a request already under way is free; only a new upstream request is spent.
            let joined = eventLoop.makePromise(of: Fetched.self)
            if flights.joinIfRunning(key, promise: joined) {
                return .pending(answer(from: joined.futureResult, leads: false, on: eventLoop))
            }
            joined.fail(CancellationError())
            if case .denied(let retryAfter) = budgets.spend(team: spender.team, perMinute: spender.perMinute) {
                let error = GatewayError.teamBudgetSpent(retryAfterSeconds: retryAfter)
                var response = errorResponse(error, cacheStatus: "\(Self.cacheName); detail=\(error)")
                response.trace.budgetRefused = true
                return .ready(response)
            }
            return .pending(waitForFetch(key, on: eventLoop, requestID: requestID))
        }
    }

    /// Joins (or leads) the fetch for `key` and answers from its result, or 504 after `waitLimit`.
    private func waitForFetch(
        _ key: CacheKey,
        on eventLoop: any EventLoop,
        requestID: String?
    ) -> EventLoopFuture<GatewayResponse> {
        let flight = eventLoop.makePromise(of: Fetched.self)
        let leads = flights.join(key, promise: flight)
        if leads { fetch(key, on: eventLoop, requestID: requestID) }
        return answer(from: flight.futureResult, leads: leads, on: eventLoop)
    }

    /// The answer from a flight's result, or 504 once `waitLimit` has passed.
    private func answer(
        from flight: EventLoopFuture<Fetched>,
        leads: Bool,
        on eventLoop: any EventLoop
    ) -> EventLoopFuture<GatewayResponse> {
        let answer = eventLoop.makePromise(of: GatewayResponse.self)
        let once = AnswerOnce()
        let timeout = eventLoop.assumeIsolated().scheduleTask(in: waitLimit) {
            guard once.claim() else { return }
            let error = GatewayError.upstreamTimeout
            var response = self.errorResponse(error, cacheStatus: "\(Self.cacheName); fwd=miss; detail=\(error)")
            response.trace.cache = leads ? .miss : .coalesced
            answer.succeed(response)
        }
        flight.assumeIsolated().whenComplete { result in
            timeout.cancel()
            guard once.claim() else { return }
            switch result {
            case .success(let fetched):
                var response = self.response(for: fetched.result, collapsed: !leads)
                response.trace.cache = leads ? .miss : .coalesced
                response.trace.causedUpstreamRequest = leads && fetched.upstreamStatus != nil
                response.trace.upstreamStatus = fetched.upstreamStatus
                response.trace.upstreamNanoseconds = fetched.upstreamNanoseconds
                answer.succeed(response)
            case .failure:
                answer.succeed(self.errorResponse(.badUpstreamResponse, cacheStatus: nil))
            }
        }
        return answer.futureResult
    }

    /// Starts one refresh of a stale page unless one is already under way; nobody waits for it.
    @discardableResult
    private func refreshInBackground(_ key: CacheKey, on eventLoop: any EventLoop, requestID: String?) -> Bool {
        guard flights.tryLead(key) else { return false }
        fetch(key, on: eventLoop, requestID: requestID)
        return true
    }

    /// The leader's work: a slot from the governor, the upstream request, the cache updated, the flight
    /// completed for every waiter.
    private func fetch(_ key: CacheKey, on eventLoop: any EventLoop, requestID: String?) {
        let governor = self.governor
        governor.acquire(on: eventLoop).flatMap { () -> EventLoopFuture<Fetched> in
            let started = NIODeadline.now()
            let request = self.upstreamRequest(for: key, requestID: requestID)
            return self.upstream.execute(request, on: eventLoop).always { result in
                governor.release(self.governorOutcome(of: result))
                self.record(result, nanoseconds: (NIODeadline.now() - started).nanoseconds)
            }.map { response in
                Fetched(
                    result: self.settle(response, key: key),
                    upstreamStatus: response.status,
                    upstreamNanoseconds: UInt64(max(0, (NIODeadline.now() - started).nanoseconds))
                )
            }
        }.recover { error in
            self.cache.markRevalidationFailed(key)
            if let rejection = error as? UpstreamGovernor.Rejection {
                return Fetched(result: .failed(GatewayError(rejection)))
            }
            let upstreamError = error as? UpstreamError ?? .invalidResponse("\(error)")
            self.logger.warning(
                "upstream request failed",
                metadata: ["error": "\(upstreamError)", "query": "\(key.query)"]
            )
            return Fetched(result: .failed(GatewayError(upstreamError)))
        }.whenComplete { result in
            self.flights.complete(key, with: result)
        }
    }

    private func record(_ result: Result<UpstreamResponse, any Error>, nanoseconds: Int64) {
        guard let metrics else { return }
        let outcome: GatewayMetrics.UpstreamOutcome
        var status: Int?
        switch result {
        case .success(let response):
            status = response.status
            outcome = response.status == 429 ? .rateLimited : .ok
        case .failure(let error as UpstreamError):
            outcome = error.isTimeout ? .timeout : error.isBadResponse ? .error : .refused
        case .failure:
            outcome = .error
        }
        metrics.upstream(status: status, outcome: outcome, nanoseconds: UInt64(max(0, nanoseconds)))
    }

    /// The request sent upstream for `key`: the canonical query, the key, the request id, and nothing else
    /// from the client.
    func upstreamRequest(for key: CacheKey, requestID: String? = nil) -> UpstreamRequest {
        var headers = HTTPHeaders([
            ("xi-api-key", apiKey.revealed),
            ("Accept", "application/json"),
            ("User-Agent", Self.userAgent),
        ])
        if let requestID { headers.add(name: "X-Request-Id", value: requestID) }
        return UpstreamRequest(target: Route.listPath + "?" + key.query, headers: headers)
    }

    private func governorOutcome(of result: Result<UpstreamResponse, any Error>) -> UpstreamGovernor.Outcome {
        let outcome = UpstreamGovernor.Outcome(result, now: wallClock())
        if case .rateLimited(let retryAfter, let maximum) = outcome {
            logger.warning(
                "upstream answered 429: the key backs off",
                metadata: ["retry_after": "\(retryAfter.map(String.init) ?? "none")", "maximum": "\(maximum ?? 0)"]
            )
        }
        return outcome
    }

    /// Applies an upstream answer to the cache and says what it came to.
    private func settle(_ response: UpstreamResponse, key: CacheKey) -> FetchResult {
        switch response.status {
        case 200:
            guard response.body.withUnsafeReadableBytes({ JSONValidator.isValid($0) }) else {
                logger.warning("upstream sent a 200 that is not JSON; not stored", metadata: ["query": "\(key.query)"])
                cache.markRevalidationFailed(key)
                return .failed(.badUpstreamResponse)
            }
            let contentType = response.headers.first(name: "content-type") ?? "application/json"
            let page = CachedPage(body: response.body.compacted(), contentType: contentType, storedAt: cache.now())
            guard cache.ttlSeconds > 0 else {
                cache.remove(key)
                return .page(page, storage: "detail=ttl-zero")
            }
            switch cache.store(page, for: key) {
            case .stored: return .page(page, storage: "stored")
            case .tooLarge: return .page(page, storage: "detail=too-large")
            }
        case 401, 403, 404, 422:
            // The upstream says the page is no longer right: drop it.
            cache.remove(key)
            return .passThrough(response)
        case 429, 500...599:
            // Says nothing about the page: a stale copy stands in for it.
            cache.markRevalidationFailed(key)
            return .passThrough(response)
        default:
            return .passThrough(response)
        }
    }

    private func response(for result: FetchResult, collapsed: Bool) -> GatewayResponse {
        let suffix = collapsed ? "; collapsed" : ""
        switch result {
        case .page(let page, let storage):
            let age = Int((cache.now() &- page.storedAt) / 1_000_000_000)
            return pageResponse(
                page,
                age: age,
                cacheStatus: .value("\(Self.cacheName); fwd=miss; fwd-status=200; \(storage)\(suffix)")
            )
        case .passThrough(let response):
            return passThrough(
                response,
                cacheStatus: "\(Self.cacheName); fwd=miss; fwd-status=\(response.status)\(suffix)"
            )
        case .failed(let error):
            return errorResponse(error, cacheStatus: "\(Self.cacheName); fwd=miss; detail=\(error)\(suffix)")
        }
    }

    private func passThrough(_ response: UpstreamResponse, cacheStatus: String) -> GatewayResponse {
        var answer = GatewayResponse(passingOn: response)
        answer.cacheStatus = .value(cacheStatus)
        answer.age = 0
        return answer
    }

    private func pageResponse(_ page: CachedPage, age: Int, cacheStatus: CacheStatus) -> GatewayResponse {
        var response = GatewayResponse(status: .ok, body: page.body)
        response.headerLines = page.headerLines
        response.cacheStatus = cacheStatus
        response.age = age
        return response
    }

    private func errorResponse(_ error: GatewayError, cacheStatus: String?) -> GatewayResponse {
        var response = error.response(allocator: allocator)
        response.cacheStatus = .value(cacheStatus ?? "\(Self.cacheName); detail=\(error.shortDescription)")
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
