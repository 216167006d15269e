import GatewayCore
import GatewayTesting
import Logging
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Synchronization
import Testing

@testable import GatewayServer

/// A service over a scripted upstream and a manual clock.
struct ServiceFixture {
    let clock = ManualClock()
    let cache: ResponseCache
    let governor: UpstreamGovernor
    let upstream: ScriptedUpstreamClient
    let budgets: TeamBudgets
    let service: ListService
    let loop = EmbeddedEventLoop()

    init(
        apiKey: String = "secret-upstream-key",
        maxBytes: Int = 1 << 20,
        staleSeconds: Int = 0,
        cache: ResponseCache? = nil,
        metrics: GatewayMetrics? = nil,
        script: @escaping @Sendable (UpstreamRequest) -> Result<UpstreamResponse, UpstreamError> = Self.pages
    ) {
        self.cache =
            cache
            ?? ResponseCache(
                maxBytes: maxBytes,
                ttlSeconds: 30,
                staleSeconds: staleSeconds,
                shardCount: 1,
                clock: clock
            )
        self.upstream = ScriptedUpstreamClient(script: script)
        self.budgets = TeamBudgets(clock: clock)
        self.governor = UpstreamGovernor(
            configuration: .init(maxConcurrency: 4, maxQueue: 16, queueTimeout: .seconds(5), backoffMaxSeconds: 30),
            clock: clock
        )
        self.service = ListService(
            cache: self.cache,
            upstream: upstream,
            governor: governor,
            apiKey: Secret(apiKey),
            waitLimit: .seconds(10),
            logger: Logger(label: "test"),
            metrics: metrics,
            budgets: budgets,
            clock: clock
        )
    }

    /// A 200 with the fake upstream's page for the request's target.
    static let pages: @Sendable (UpstreamRequest) -> Result<UpstreamResponse, UpstreamError> = { request in
        .success(
            UpstreamResponse(
                status: 200,
                headers: HTTPHeaders([("Content-Type", "application/json")]),
                body: ByteBuffer(string: FakeUpstream.page(for: request.target))
            )
        )
    }

    static func status(
        _ status: Int,
        _ body: String,
        headers: [(String, String)] = [("Content-Type", "application/json")]
    ) -> @Sendable (UpstreamRequest) -> Result<UpstreamResponse, UpstreamError> {
        { _ in .success(UpstreamResponse(status: status, headers: HTTPHeaders(headers), body: ByteBuffer(string: body)))
        }
    }

    func get(_ query: String) throws -> GatewayResponse {
        let future = service.respond(toQuery: Substring(query), on: loop)
        loop.run()
        return try future.wait()
    }
}

@Suite("ListService")
struct ListServiceTests {
    @Test func missThenHitServesIdenticalBytesWithOneUpstreamRequest() throws {
        let fixture = ServiceFixture()

        let miss = try fixture.get("page_size=5")
        fixture.clock.advance(seconds: 7.5)
        let hit = try fixture.get("page_size=5")

        #expect(miss.status == .ok)
        #expect(hit.status == .ok)
        #expect(miss.body == hit.body)
        #expect(fixture.upstream.requests.count == 1)
        #expect(miss.cacheStatus?.description == "xi-gateway; fwd=miss; fwd-status=200; stored")
        #expect(miss.age == 0)
        #expect(hit.cacheStatus?.description == "xi-gateway; hit; ttl=22")
        #expect(hit.age == 7)
        #expect(
            hit.headerLines.map { String(buffer: $0) }?.hasPrefix("Content-Type: application/json\r\nETag: ") == true
        )
        #expect(hit.headers.isEmpty)
    }

    /// A refresh that brings the same bytes keeps the page's `Last-Modified` (so `If-Modified-Since` still
    /// holds); one that brings other bytes dates the page anew.
    @Test(arguments: [false, true])
    func aRefreshKeepsLastModifiedUnlessThePageChanged(changes: Bool) throws {
        let calls = Locked(0)
        let fixture = ServiceFixture(staleSeconds: 60) { _ in
            let call = calls.withLock { count in
                count += 1
                return count
            }
            return .success(
                UpstreamResponse(
                    status: 200,
                    headers: HTTPHeaders([("Content-Type", "application/json")]),
                    body: ByteBuffer(string: "{\"results\":[],\"n\":\(changes ? call : 0)}")
                )
            )
        }
        func lastModified(_ response: GatewayResponse) -> String? {
            response.headerLines.map { String(buffer: $0) }?.split(separator: "\r\n")
                .first { $0.hasPrefix("Last-Modified: ") }.map(String.init)
        }

        let first = try fixture.get("page_size=5")
        fixture.clock.advance(seconds: 31)
        let stale = try fixture.get("page_size=5")
        let refreshed = try fixture.get("page_size=5")

        #expect(stale.cacheStatus?.description.contains("stale-while-revalidate") == true)
        #expect(refreshed.cacheStatus?.description.hasPrefix("xi-gateway; hit") == true)
        #expect(fixture.upstream.requests.count == 2)
        #expect(lastModified(first) != nil)
        #expect((lastModified(refreshed) == lastModified(first)) == !changes)
    }

    @Test func pagesExpireAfterTheTTL() throws {
        let fixture = ServiceFixture()

        _ = try fixture.get("")
        fixture.clock.advance(seconds: 29.9)
        #expect(try fixture.get("").cacheStatus?.description.contains("hit") == true)
        fixture.clock.advance(seconds: 0.1)
        let after = try fixture.get("")

        #expect(after.cacheStatus?.description == "xi-gateway; fwd=miss; fwd-status=200; stored")
        #expect(fixture.upstream.requests.count == 2)
    }

    @Test func sendsTheCanonicalQueryAndOnlyTheGatewaysHeaders() throws {
        let fixture = ServiceFixture()

        _ = try fixture.get("cursor=c%2B1&page_size=007&agent_id=a%26page_size%3D100")

        let request = try #require(fixture.upstream.requests.first)
        #expect(request.target == "/v1/convai/test-invocations?agent_id=a%26page_size%3D100&page_size=7&cursor=c%2B1")
        #expect(request.headers["xi-api-key"] == ["secret-upstream-key"])
        #expect(request.headers["Accept"] == ["application/json"])
        #expect(request.headers["User-Agent"] == ["xi-gateway/\(GatewayVersion.current)"])
        #expect(request.headers["Accept-Encoding"] == ["gzip"])
        #expect(request.headers.count == 4)
        #expect(request.keepsContentCoding)
    }

    @Test(
        arguments: [
            ("agent_id=a&page_size=7", "page_size=007&agent_id=%61"),
            ("", "page_size=30"),
            ("search=two+words", "search=two%20words"),
            ("page_size=10", "page_size=1_0"),
            ("page_size=1", "page_size=+1.0"),
        ]
    )
    func equivalentQueriesShareOneEntry(first: String, second: String) throws {
        let fixture = ServiceFixture()

        _ = try fixture.get(first)
        let second = try fixture.get(second)

        #expect(second.cacheStatus?.description.hasPrefix("xi-gateway; hit") == true)
        #expect(fixture.upstream.requests.count == 1)
    }

    @Test(
        arguments: [
            ("agent_id=a", "agent_id=b"),
            ("agent_id=", ""),
            ("page_size=30", "page_size=31"),
            ("cursor=x", "search=x"),
            ("search=a+b", "search=a%2Bb"),
        ]
    )
    func differentQueriesNeverShare(first: String, second: String) throws {
        let fixture = ServiceFixture()

        _ = try fixture.get(first)
        _ = try fixture.get(second)

        #expect(fixture.upstream.requests.count == 2)
    }

    @Test func differentUpstreamKeysNeverShareAPage() throws {
        let clock = ManualClock()
        let cache = ResponseCache(maxBytes: 1 << 20, ttlSeconds: 30, shardCount: 1, clock: clock)
        let first = ServiceFixture(apiKey: "key-one", cache: cache)
        let second = ServiceFixture(apiKey: "key-two", cache: cache)

        _ = try first.get("page_size=5")
        let other = try second.get("page_size=5")

        #expect(other.cacheStatus?.description.contains("fwd=miss") == true)
        #expect(second.upstream.requests.count == 1)
        #expect(cache.statistics.entries == 2)
    }

    @Test func invalidQueriesAreAnsweredHereAndNeverForwarded() throws {
        let fixture = ServiceFixture()

        let response = try fixture.get("page_size=0&colour=blue")

        #expect(response.status == .unprocessableEntity)
        #expect(
            String(buffer: response.body)
                == #"{"detail":[{"type":"greater_than_equal","loc":["query","page_size"],"msg":"Input should be greater than or equal to 1","input":"0","ctx":{"ge":1}},{"type":"extra_forbidden","loc":["query","colour"],"msg":"Extra inputs are not permitted","input":"blue"}]}"#
        )
        #expect(response.headers["Content-Type"] == ["application/json"])
        #expect(response.cacheStatus?.description == "xi-gateway; detail=invalid-query")
        #expect(fixture.upstream.requests.isEmpty)
    }

    @Test(arguments: ["agent_id=%zz", "agent_id=%FF", "agent_id=%"])
    func undecodableQueriesAre400(query: String) throws {
        let fixture = ServiceFixture()

        let response = try fixture.get(query)

        #expect(response.status == .badRequest)
        #expect(String(buffer: response.body).contains("\"invalid_query_encoding\""))
        #expect(fixture.upstream.requests.isEmpty)
    }

    @Test func otherStatusesArePassedThroughAndNotStored() throws {
        let body = #"{"detail":{"status":"system_busy","message":"slow down"}}"#
        let fixture = ServiceFixture(
            script: ServiceFixture.status(
                503,
                body,
                headers: [
                    ("Content-Type", "application/json"), ("Retry-After", "2"), ("maximum-concurrent-requests", "4"),
                    ("Set-Cookie", "not=forwarded"),
                ]
            )
        )

        let first = try fixture.get("page_size=5")
        let second = try fixture.get("page_size=5")

        #expect(first.status == .serviceUnavailable)
        #expect(String(buffer: first.body) == body)
        #expect(first.headers["Retry-After"] == ["2"])
        #expect(first.headers["maximum-concurrent-requests"] == ["4"])
        #expect(first.headers["Set-Cookie"].isEmpty)
        #expect(first.cacheStatus?.description == "xi-gateway; fwd=miss; fwd-status=503")
        #expect(second.status == .serviceUnavailable)
        #expect(fixture.upstream.requests.count == 2)
        #expect(fixture.cache.statistics.entries == 0)
    }

    @Test func aSuccessThatIsNotJSONIsA502AndNotStored() throws {
        let fixture = ServiceFixture(script: ServiceFixture.status(200, "<html>maintenance</html>"))

        let first = try fixture.get("")
        _ = try fixture.get("")

        #expect(first.status == .badGateway)
        #expect(String(buffer: first.body).contains("bad_upstream_response"))
        #expect(fixture.upstream.requests.count == 2)
    }

    @Test(
        arguments: [
            (UpstreamError.timedOut("slow"), HTTPResponseStatus.gatewayTimeout, "upstream_timeout"),
            (.connectFailed("refused"), .badGateway, "upstream_unavailable"),
            (.connectionReset("reset"), .badGateway, "upstream_unavailable"),
            (.invalidResponse("garbage"), .badGateway, "bad_upstream_response"),
            (.responseTooLarge("big"), .badGateway, "bad_upstream_response"),
        ]
    )
    func upstreamFailuresBecomeGatewayErrors(
        error: UpstreamError,
        status: HTTPResponseStatus,
        bodyStatus: String
    ) throws {
        let fixture = ServiceFixture(script: { _ in .failure(error) })

        let response = try fixture.get("")

        #expect(response.status == status)
        #expect(String(buffer: response.body).contains("\"status\":\"\(bodyStatus)\""))
        #expect(!String(buffer: response.body).contains(error.detail))
        #expect(response.cacheStatus?.description.hasPrefix("xi-gateway; fwd=miss; detail=") == true)
    }

    @Test func aPageLargerThanTheCacheIsServedButNotStored() throws {
        // Smaller than the page's header lines alone: no page fits, however well it packs.
        let fixture = ServiceFixture(maxBytes: 300)

        let first = try fixture.get("page_size=30")
        let second = try fixture.get("page_size=30")

        #expect(first.status == .ok)
        #expect(first.cacheStatus?.description == "xi-gateway; fwd=miss; fwd-status=200; detail=too-large")
        #expect(first.body.readableBytes > 2000)
        #expect(second.status == .ok)
        #expect(fixture.upstream.requests.count == 2)
    }

    @Test func theKeyNeverAppearsInAnyAnswer() throws {
        let key = "sk_live_do_not_leak_0123456789"
        let scripts: [@Sendable (UpstreamRequest) -> Result<UpstreamResponse, UpstreamError>] = [
            ServiceFixture.pages, ServiceFixture.status(401, "{}"), { _ in .failure(.timedOut(key)) },
        ]
        for script in scripts {
            let fixture = ServiceFixture(apiKey: key, script: script)
            for query in ["", "page_size=0", "agent_id=%zz"] {
                let response = try fixture.get(query)
                #expect(!String(buffer: response.body).contains(key))
                #expect(!response.headers.contains { $0.value.contains(key) })
            }
        }
    }
}
