import GatewayCore
import GatewayTesting
import Logging
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@testable import GatewayServer

/// What the list service does with each answer of the shared tier, against a scripted one: no Redis here
/// (`RedisSharedTierTests` and the replicas test run the real one).
@Suite("ListService with a shared tier")
struct ListServiceSharedTierTests {
    let clock = ManualClock()
    let loop = EmbeddedEventLoop()
    let upstream = ScriptedUpstreamClient(script: ServiceFixture.pages)
    let cache: ResponseCache

    init() {
        cache = ResponseCache(maxBytes: 1 << 22, ttlSeconds: 30, staleSeconds: 60, shardCount: 1, clock: clock)
    }

    private func service(
        _ shared: ScriptedSharedTier,
        budgets: TeamBudgets? = nil,
        upstream: ScriptedUpstreamClient? = nil,
        cache: ResponseCache? = nil
    ) -> ListService {
        ListService(
            cache: cache ?? self.cache,
            upstream: upstream ?? self.upstream,
            governor: UpstreamGovernor(
                configuration: .init(maxConcurrency: 4, maxQueue: 16, queueTimeout: .seconds(5), backoffMaxSeconds: 30),
                clock: clock
            ),
            apiKey: Secret("k"),
            waitLimit: .seconds(10),
            logger: Logger(label: "test"),
            budgets: budgets ?? TeamBudgets(clock: clock),
            clock: clock,
            shared: shared
        )
    }

    private func get(
        _ service: ListService,
        _ query: String,
        perMinute: Int? = 10,
        negotiation: ContentNegotiation = .identity
    ) throws -> GatewayResponse {
        let future = service.respond(
            toQuery: Substring(query),
            on: loop,
            spender: ListService.Spender(team: "red", perMinute: perMinute),
            negotiation: negotiation
        )
        loop.run()
        return try future.wait()
    }

    private func flight(_ query: String) throws -> SharedFlight {
        SharedFlight(key: try key(query), token: "t", generations: ["0", "0"])
    }

    private func key(_ query: String) throws -> CacheKey {
        CacheKey(credential: CredentialID(Secret("k")), query: try ListQuery.parse(Substring(query)))
    }

    /// Another replica stored the gzip form: a gzip client gets it as it is, an identity client its JSON;
    /// one whose gzip does not unpack is not used: this replica asks the upstream instead.
    @Test func aGzipPageAnotherReplicaStoredIsServedInBothForms() throws {
        let json = #"{"results":[{"id":"inv_0"},{"id":"inv_0"},{"id":"inv_0"},{"id":"inv_0"}],"has_more":false}"#
        let packed = try #require(Array(json.utf8).withUnsafeBytes { Gzip.compress($0) })
        let shared = ScriptedSharedTier(
            .init(entries: [
                .page(SharedPage(body: ByteBuffer(bytes: packed), contentType: "application/json", ageMilliseconds: 0))
            ])
        )
        let service = service(shared)
        let gzip = try get(service, "page_size=5", negotiation: ContentNegotiation(acceptsGzip: true))
        let identity = try get(service, "page_size=5")

        #expect(Array(gzip.body.readableBytesView) == packed, "the bytes Redis held, as they are")
        #expect(gzip.headerLines.map { String(buffer: $0) }?.contains("Content-Encoding: gzip\r\n") == true)
        #expect(String(buffer: identity.body) == json)
        #expect(identity.cacheStatus == .hit(ttl: 30))

        let damaged = ScriptedSharedTier(
            .init(entries: [
                .page(
                    SharedPage(
                        body: ByteBuffer(bytes: packed.dropLast(9)),
                        contentType: "application/json",
                        ageMilliseconds: 0
                    )
                )
            ])
        )
        let instead = try get(self.service(damaged), "page_size=6")
        #expect(instead.status == .ok)
        #expect(instead.cacheStatus == .fetched(.stored, collapsed: false))
        #expect(upstream.requests.count == 1, "asked of the upstream by this replica")
    }

    @Test func aPageAnotherReplicaStoredIsAnsweredAsASharedHitAndKept() throws {
        let shared = ScriptedSharedTier(
            .init(entries: [
                .page(
                    SharedPage(
                        body: ByteBuffer(string: "{\"s\":1}"),
                        contentType: "application/json",
                        ageMilliseconds: 4_000
                    )
                )
            ])
        )
        let service = service(shared)
        let first = try get(service, "page_size=5")
        #expect(first.status == .ok)
        #expect(first.cacheStatus == .sharedHit(ttl: 26))
        #expect(first.age == 4, "its age by the shared tier's clock")
        #expect(String(buffer: first.body) == "{\"s\":1}")
        #expect(upstream.requests.isEmpty)
        #expect(shared.calls == [.enter(query: "page_size=5", freshMilliseconds: 30_000)])

        let second = try get(service, "page_size=5")
        #expect(second.cacheStatus == .hit(ttl: 26), "now in this replica's own cache")
        #expect(shared.calls.count == 1, "a first-tier hit never asks the shared tier")
    }

    @Test func aLeaderSpendsTheSharedBudgetAsksTheUpstreamAndSharesThePage() throws {
        let shared = ScriptedSharedTier(.init(entries: [.lead(try flight("page_size=5"))]))
        let budgets = TeamBudgets(clock: clock)
        let response = try get(service(shared, budgets: budgets), "page_size=5", perMinute: 2)
        #expect(response.cacheStatus == .fetched(.stored, collapsed: false))
        #expect(upstream.requests.count == 1)
        let body = String(buffer: response.body)
        #expect(
            shared.calls == [
                .enter(query: "page_size=5", freshMilliseconds: 30_000),
                .spend(team: "red", perMinute: 2),
                .finish(query: "page_size=5", status: 200, body: body, gzip: true, lifeMilliseconds: 90_000),
            ]
        )
        // The local bucket was not spent as well: it took the shared bucket's level (the script's 0 tokens),
        // which is what the team is told and what decides if Redis goes away.
        #expect(budgets.state(team: "red", perMinute: 2).remaining == 0)
        #expect(budgets.counts["red"] == BudgetCounts(spent: 1, refused: 0))
    }

    @Test func aSharedBudgetRefusalAbandonsTheFlightWithoutAskingTheUpstream() throws {
        let shared = ScriptedSharedTier(
            .init(entries: [.lead(try flight("page_size=5"))], budget: .denied(retryAfterSeconds: 7))
        )
        let response = try get(service(shared), "page_size=5")
        #expect(response.status == .tooManyRequests)
        #expect(response.trace.budgetRefused)
        #expect(upstream.requests.isEmpty)
        #expect(shared.calls.last == .abandon(query: "page_size=5"))
    }

    /// Team red's request for `query` with `Cache-Control: no-cache`.
    private func refetch(_ service: ListService, _ query: String) throws -> GatewayResponse {
        let future = service.respond(
            toQuery: Substring(query),
            on: loop,
            spender: ListService.Spender(team: "red", perMinute: 10),
            freshness: FreshnessDemand(maxAge: 0)
        )
        loop.run()
        return try future.wait()
    }

    /// A client's demand for a newer page reaches the shared tier as its freshness bound: a page another
    /// replica stored long ago is not taken, the flight is led (spent from the shared budget), and every
    /// replica gets the new page.
    @Test func aClientsNoCacheAsksTheSharedTierForANewerPageAndLeads() throws {
        let shared = ScriptedSharedTier(.init(entries: [.lead(try flight("page_size=5"))]))
        let service = service(shared)
        _ = try get(service, "page_size=5")
        clock.advance(seconds: 4)
        let again = try flight("page_size=5")
        shared.update { $0.entries = [.lead(again)] }
        let answer = try refetch(service, "page_size=5")
        #expect(answer.cacheStatus == .fetched(.stored, collapsed: false, forward: .request))
        #expect(upstream.requests.count == 2)
        #expect(
            shared.calls.filter { if case .enter = $0 { true } else { false } }.last
                == .enter(query: "page_size=5", freshMilliseconds: 1)
        )
        #expect(shared.calls.filter { $0 == .spend(team: "red", perMinute: 10) }.count == 2)
    }

    /// Over the shared budget, the page held is the answer.
    @Test func overTheSharedBudgetThePageHeldIsTheAnswer() throws {
        let shared = ScriptedSharedTier(.init(entries: [.lead(try flight("page_size=5"))]))
        let service = service(shared)
        let first = try get(service, "page_size=5")
        clock.advance(seconds: 2)
        let again = try flight("page_size=5")
        shared.update {
            $0.entries = [.lead(again)]
            $0.budget = .denied(retryAfterSeconds: 9)
        }
        let answer = try refetch(service, "page_size=5")
        #expect(answer.status == .ok)
        #expect(answer.body == first.body)
        #expect(answer.cacheStatus == .heldOverBudget(ttl: 28))
        #expect(answer.trace.budgetRefused)
        #expect(upstream.requests.count == 1)
    }

    @Test func aNon200AnswerReachesTheOtherReplicasAndIsNotStored() throws {
        let upstream = ScriptedUpstreamClient(script: ServiceFixture.status(404, "{\"detail\":\"no\"}"))
        let shared = ScriptedSharedTier(.init(entries: [.lead(try flight("page_size=5"))]))
        let service = service(shared, upstream: upstream)
        let response = try get(service, "page_size=5")
        #expect(response.status == .notFound)
        #expect(
            shared.calls.last
                == .finish(query: "page_size=5", status: 404, body: "{\"detail\":\"no\"}", lifeMilliseconds: 0)
        )
    }

    @Test func aFollowerAnswersWithTheLeadersPageCollapsed() throws {
        let page = SharedPage(
            body: ByteBuffer(string: "{\"p\":2}"),
            contentType: "application/json",
            ageMilliseconds: 0
        )
        let shared = ScriptedSharedTier(.init(entries: [.follow(lockLeft: .seconds(3))], outcomes: [.page(page)]))
        let service = service(shared)
        let response = try get(service, "page_size=5")
        #expect(response.cacheStatus == .fetched(.stored, collapsed: true))
        #expect(String(buffer: response.body) == "{\"p\":2}")
        #expect(upstream.requests.isEmpty)
        #expect(!shared.calls.contains(.spend(team: "red", perMinute: 10)), "following is free")
        #expect(try get(service, "page_size=5").cacheStatus == .hit(ttl: 30))
    }

    @Test func aFollowerPassesOnTheLeadersOtherAnswer() throws {
        let shared = ScriptedSharedTier(
            .init(
                entries: [.follow(lockLeft: .seconds(3))],
                outcomes: [.answer(status: 422, contentType: "application/json", body: ByteBuffer(string: "{}"))]
            )
        )
        let response = try get(service(shared), "page_size=5")
        #expect(response.status == .unprocessableEntity)
        #expect(response.cacheStatus == .passedOn(status: 422, collapsed: true))
        #expect(upstream.requests.isEmpty)
    }

    @Test func aFollowerWhoseLeaderVanishedEntersAgainAndLeads() throws {
        let shared = ScriptedSharedTier(
            .init(entries: [.follow(lockLeft: .seconds(3)), .lead(try flight("page_size=5"))], outcomes: [nil])
        )
        let response = try get(service(shared), "page_size=5")
        #expect(response.cacheStatus == .fetched(.stored, collapsed: false))
        #expect(upstream.requests.count == 1)
        #expect(shared.calls.filter { if case .enter = $0 { true } else { false } }.count == 2)
    }

    @Test func withTheSharedTierDownTheReplicaWorksAloneOnItsOwnBudget() throws {
        let shared = ScriptedSharedTier(.init(isUp: false))
        let service = service(shared)
        #expect(try get(service, "page_size=1", perMinute: 1).status == .ok)
        #expect(try get(service, "page_size=2", perMinute: 1).status == .tooManyRequests, "the local budget holds")
        #expect(
            !shared.calls.contains { if case .spend = $0 { true } else { false } },
            "the shared budget is not asked: the replica's own was spent"
        )
        #expect(upstream.requests.count == 1)
    }

    @Test func whenRedisFailsDuringAnEntryTheReplicaAsksTheUpstreamItself() throws {
        let shared = ScriptedSharedTier(.init(entries: [.alone]))
        let response = try get(service(shared), "page_size=5")
        #expect(response.cacheStatus == .fetched(.stored, collapsed: false))
        #expect(upstream.requests.count == 1)
        #expect(shared.calls == [.enter(query: "page_size=5", freshMilliseconds: 30_000)])
    }

    /// Over a mebibyte as stored: letters at random, which gzip cannot pack below that.
    @Test func pagesOverOneMebibyteStayLocal() throws {
        let letters = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
        var generator = SystemRandomNumberGenerator()
        let big = String((0..<(3 << 19)).map { _ in letters[Int(generator.next() % UInt64(letters.count))] })
        let upstream = ScriptedUpstreamClient(script: ServiceFixture.status(200, "\"\(big)\""))
        let shared = ScriptedSharedTier(.init(entries: [.lead(try flight("page_size=5"))]))
        let service = service(shared, upstream: upstream)
        #expect(try get(service, "page_size=5").cacheStatus == .fetched(.stored, collapsed: false))
        #expect(shared.calls.last == .abandon(query: "page_size=5"), "not passed through Redis: \(shared.calls)")
    }

    /// With a TTL of 0 nothing is stored, but the other replicas' waiters still get the page.
    @Test func aPageNotStoredStillReachesTheOtherReplicasWaiters() throws {
        let shared = ScriptedSharedTier(.init(entries: [.lead(try flight("page_size=5"))]))
        let noTTL = ResponseCache(maxBytes: 1 << 22, ttlSeconds: 0, staleSeconds: 0, shardCount: 1, clock: clock)
        let response = try get(service(shared, cache: noTTL), "page_size=5")
        #expect(response.cacheStatus == .fetched(.ttlZero, collapsed: false))
        #expect(
            shared.calls.last
                == .finish(
                    query: "page_size=5",
                    status: 200,
                    body: String(buffer: response.body),
                    gzip: true,
                    lifeMilliseconds: 0
                )
        )
    }
}
