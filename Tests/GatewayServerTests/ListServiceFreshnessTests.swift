import GatewayCore
import GatewayTesting
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@testable import GatewayServer

extension FlightFixture {
    /// A list request with the client's freshness demand (and team), the loop run once.
    func request(
        _ query: String,
        freshness: FreshnessDemand,
        spender: ListService.Spender? = nil
    ) -> EventLoopFuture<GatewayResponse> {
        let future = service.respond(toQuery: Substring(query), on: loop, spender: spender, freshness: freshness)
        loop.run()
        return future
    }

    /// Stores the page for `query` through one upstream request; `body` is what the upstream sends.
    func prime(_ query: String, body: String = #"{"page":1}"#) throws {
        let miss = request(query)
        answer(Self.json(body))
        #expect(try answered(miss).status == .ok)
    }
}

/// The client's `Cache-Control` request directives on the list route (RFC 9111, section 5.2.1).
@Suite("ListService: Cache-Control from the client")
struct ListServiceFreshnessTests {
    @Test func noCacheFetchesAFreshPageAgainAndTheAnswerReplacesIt() throws {
        let fixture = FlightFixture()
        try fixture.prime("page_size=5")
        fixture.clock.advance(seconds: 5)

        let refreshed = fixture.request("page_size=5", freshness: FreshnessDemand(maxAge: 0))
        #expect(fixture.upstream.openTargets.count == 1, "a fresh page is asked for again")
        fixture.answer(FlightFixture.json(#"{"page":2}"#))
        let answer = try fixture.answered(refreshed)
        #expect(answer.cacheStatus?.description == "xi-gateway; fwd=request; fwd-status=200; stored")
        #expect(String(buffer: answer.body) == #"{"page":2}"#)
        #expect(answer.age == 0)

        // The new page replaced the old one, with a whole TTL of its own.
        let after = try fixture.answered(fixture.request("page_size=5"))
        #expect(String(buffer: after.body) == #"{"page":2}"#)
        #expect(after.cacheStatus?.description == "xi-gateway; hit; ttl=30")
        #expect(fixture.upstream.requests.count == 2)
    }

    @Test func maxAgeFetchesAgainOnlyAPageOlderThanIt() throws {
        let fixture = FlightFixture()
        try fixture.prime("page_size=5")
        fixture.clock.advance(seconds: 10)

        let young = try fixture.answered(fixture.request("page_size=5", freshness: FreshnessDemand(maxAge: 10)))
        #expect(young.cacheStatus?.description == "xi-gateway; hit; ttl=20")
        #expect(fixture.upstream.requests.count == 1)

        let old = fixture.request("page_size=5", freshness: FreshnessDemand(maxAge: 9))
        fixture.answer(FlightFixture.json(#"{"page":2}"#))
        #expect(try fixture.answered(old).cacheStatus?.description == "xi-gateway; fwd=request; fwd-status=200; stored")
        #expect(fixture.upstream.requests.count == 2)
    }

    /// Concurrent requests for a newer page share one upstream request, as misses do.
    @Test func concurrentNoCacheRequestsShareOneUpstreamRequest() throws {
        let fixture = FlightFixture()
        try fixture.prime("page_size=5")
        let first = fixture.request("page_size=5", freshness: FreshnessDemand(maxAge: 0))
        let second = fixture.request("page_size=5", freshness: FreshnessDemand(maxAge: 0))
        let third = fixture.request("page_size=5", freshness: FreshnessDemand(maxAge: 0))
        #expect(fixture.upstream.openTargets.count == 1)
        fixture.answer(FlightFixture.json(#"{"page":2}"#))
        #expect(
            try fixture.answered(first).cacheStatus?.description == "xi-gateway; fwd=request; fwd-status=200; stored"
        )
        for joined in [second, third] {
            let answer = try fixture.answered(joined)
            #expect(answer.cacheStatus?.description == "xi-gateway; fwd=request; fwd-status=200; stored; collapsed")
            #expect(String(buffer: answer.body) == #"{"page":2}"#)
        }
        #expect(fixture.upstream.requests.count == 2)
    }

    /// A failed refresh is the client's answer (it asked not to be given the old page), and the page held
    /// stays for the others.
    @Test func aFailedRefreshIsPassedOnAndThePageStays() throws {
        let fixture = FlightFixture()
        try fixture.prime("page_size=5")
        let refreshed = fixture.request("page_size=5", freshness: FreshnessDemand(maxAge: 0))
        fixture.answer(FlightFixture.json(#"{"detail":"busy"}"#, status: 503))
        let answer = try fixture.answered(refreshed)
        #expect(answer.status.code == 503)
        #expect(answer.cacheStatus?.description == "xi-gateway; fwd=request; fwd-status=503")
        let after = try fixture.answered(fixture.request("page_size=5"))
        #expect(String(buffer: after.body) == #"{"page":1}"#)
    }

    @Test func onlyIfCachedWithoutAPageIs504AndAsksNobody() throws {
        let fixture = FlightFixture()
        let answer = try fixture.answered(
            fixture.request("page_size=5", freshness: FreshnessDemand(onlyIfCached: true))
        )
        #expect(answer.status == .gatewayTimeout)
        #expect(String(buffer: answer.body).contains(#""status":"not_cached""#))
        #expect(answer.cacheStatus?.description == "xi-gateway; detail=not-cached")
        #expect(fixture.upstream.requests.isEmpty)

        try fixture.prime("page_size=5")
        fixture.clock.advance(seconds: 4)
        let cached = try fixture.answered(
            fixture.request("page_size=5", freshness: FreshnessDemand(onlyIfCached: true))
        )
        #expect(cached.cacheStatus?.description == "xi-gateway; hit; ttl=26")
        // Held, but older than the client takes: still 504, still nobody asked.
        let tooOld = try fixture.answered(
            fixture.request("page_size=5", freshness: FreshnessDemand(maxAge: 2, onlyIfCached: true))
        )
        #expect(tooOld.status == .gatewayTimeout)
        #expect(fixture.upstream.requests.count == 1)
    }

    /// A stale page is served to `only-if-cached` without the refresh a stale hit would start.
    @Test func onlyIfCachedServesAStalePageWithoutARefresh() throws {
        let fixture = FlightFixture(staleSeconds: 300)
        try fixture.prime("page_size=5")
        fixture.clock.advance(seconds: 40)
        let stale = try fixture.answered(fixture.request("page_size=5", freshness: FreshnessDemand(onlyIfCached: true)))
        #expect(stale.cacheStatus?.description == "xi-gateway; hit; ttl=-10; detail=only-if-cached")
        #expect(fixture.upstream.requests.count == 1)
        #expect(fixture.upstream.openTargets.isEmpty)
    }

    /// Without `max-stale`, a client with `max-age` takes no stale page, however young (RFC 9111, section
    /// 5.2.1.1): it is fetched again.
    @Test func maxAgeNeverTakesAStalePage() throws {
        let fixture = FlightFixture(staleSeconds: 300)
        try fixture.prime("page_size=5")
        fixture.clock.advance(seconds: 40)
        let refreshed = fixture.request("page_size=5", freshness: FreshnessDemand(maxAge: 100))
        #expect(fixture.upstream.openTargets.count == 1)
        fixture.answer(FlightFixture.json(#"{"page":2}"#))
        let answer = try fixture.answered(refreshed)
        #expect(answer.cacheStatus?.description == "xi-gateway; fwd=request; fwd-status=200; stored")
        #expect(String(buffer: answer.body) == #"{"page":2}"#)
    }

    /// A page fetched again for a client is not a hit in the statistics; a page the cache gives is.
    @Test func theHitRatioCountsOnlyWhatTheCacheGave() throws {
        let fixture = FlightFixture()
        try fixture.prime("page_size=5")
        let refreshed = fixture.request("page_size=5", freshness: FreshnessDemand(maxAge: 0))
        fixture.answer(FlightFixture.json(#"{"page":2}"#))
        _ = try fixture.answered(refreshed)
        #expect(fixture.service.lookupStatistics == (lookups: 2, hits: 0))
        _ = try fixture.answered(fixture.request("page_size=5", freshness: FreshnessDemand(onlyIfCached: true)))
        _ = try fixture.answered(fixture.request("page_size=6", freshness: FreshnessDemand(onlyIfCached: true)))
        #expect(fixture.service.lookupStatistics == (lookups: 4, hits: 1))
    }

    /// A refresh is spent from the team's budget like a miss; over budget, the page held is the answer, and
    /// `Cache-Status` says why.
    @Test func overBudgetThePageHeldIsTheAnswer() throws {
        let fixture = FlightFixture()
        let team = ListService.Spender(team: "alpha", perMinute: 1)
        let miss = fixture.request("page_size=5", freshness: .none, spender: team)
        fixture.answer(FlightFixture.json(#"{"page":1}"#))
        #expect(try fixture.answered(miss).status == .ok)
        fixture.clock.advance(seconds: 5)

        let refused = try fixture.answered(
            fixture.request("page_size=5", freshness: FreshnessDemand(maxAge: 0), spender: team)
        )
        #expect(refused.status == .ok)
        #expect(String(buffer: refused.body) == #"{"page":1}"#)
        #expect(refused.cacheStatus?.description == "xi-gateway; hit; ttl=25; detail=team-budget-spent")
        #expect(refused.trace.budgetRefused)
        #expect(fixture.upstream.requests.count == 1)
    }
}
