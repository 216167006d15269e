import GatewayCore
import GatewayTesting
import Logging
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Prometheus
import Testing

@testable import GatewayServer

@Suite("Teams: tokens, budgets, forwarded writes")
struct TeamsTests {
    private let list = "/v1/convai/test-invocations"

    private static func registry(_ lines: String) throws -> TeamRegistry {
        try TeamRegistry(parsing: lines, source: "test")
    }

    private static func teams() throws -> TeamRegistry {
        try registry(
            """
            alpha \(SHA256.hexDigest("alpha-token".utf8)) upstream_per_minute=2
            beta \(SHA256.hexDigest("beta-token".utf8))
            beta \(SHA256.hexDigest("beta-old-token".utf8)) expires=2020-01-01T00:00:00Z
            beta \(SHA256.hexDigest("beta-next-token".utf8)) expires=2999-01-01T00:00:00Z
            """
        )
    }

    /// Pages for list requests; `{"ok":true}` for anything else.
    private static let upstream: @Sendable (UpstreamRequest) -> Result<UpstreamResponse, UpstreamError> = { request in
        guard request.method == .GET, request.target.hasPrefix("/v1/convai/test-invocations?") else {
            return .success(
                UpstreamResponse(
                    status: 200,
                    headers: HTTPHeaders([("Content-Type", "application/json")]),
                    body: ByteBuffer(string: #"{"ok":true}"#)
                )
            )
        }
        return ServiceFixture.pages(request)
    }

    private func connection(
        staleSeconds: Int = 0,
        passthrough: Bool = true,
        accessLogger: Logger = Logger(label: "test"),
        metrics: GatewayMetrics? = nil,
        renderMetrics: (@Sendable () -> [UInt8])? = nil
    ) throws -> ConnectionFixture {
        try ConnectionFixture(
            fixture: ServiceFixture(staleSeconds: staleSeconds, metrics: metrics, script: Self.upstream),
            teams: try Self.teams(),
            passthrough: passthrough,
            accessLogger: accessLogger,
            metrics: metrics,
            renderMetrics: renderMetrics
        )
    }

    @Test func aTeamTokenInXiApiKeyOrBearerIsSwappedForTheUpstreamKey() throws {
        let connection = try connection()

        let sdk = parseResponses(
            try connection.exchange("GET \(list)?page_size=1 HTTP/1.1\r\nHost: h\r\nxi-api-key: alpha-token\r\n\r\n")
        )
        let bearer = parseResponses(
            try connection.exchange(
                "GET \(list)?page_size=2 HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer beta-token\r\n\r\n"
            )
        )

        #expect(sdk.first?.status == "HTTP/1.1 200 OK")
        #expect(bearer.first?.status == "HTTP/1.1 200 OK")
        let sent = connection.fixture.upstream.requests
        #expect(sent.count == 2)
        #expect(sent.allSatisfy { $0.headers["xi-api-key"] == ["secret-upstream-key"] })
        #expect(sent.allSatisfy { $0.headers["Authorization"].isEmpty })
    }

    /// Rotation: a team's tokens all work until each one's expiry; an expired one is refused like a wrong one.
    @Test func aTeamsSecondTokenWorksAndAnExpiredOneIs401() throws {
        let connection = try connection()
        let next = parseResponses(
            try connection.exchange(
                "GET \(list)?page_size=3 HTTP/1.1\r\nHost: h\r\nxi-api-key: beta-next-token\r\n\r\n"
            )
        )
        let expired = parseResponses(
            try connection.exchange("GET \(list)?page_size=4 HTTP/1.1\r\nHost: h\r\nxi-api-key: beta-old-token\r\n\r\n")
        )
        #expect(next.first?.status == "HTTP/1.1 200 OK")
        #expect(expired.first?.status == "HTTP/1.1 401 Unauthorized")
        #expect(connection.fixture.upstream.requests.count == 1)
    }

    @Test(arguments: ["", "xi-api-key: wrong-token\r\n", "Authorization: Bearer \r\n", "xi-api-key: ALPHA-TOKEN\r\n"])
    func aMissingOrUnknownTokenIs401AndNeverReachesTheUpstream(header: String) throws {
        let connection = try connection()

        let invalid = parseResponses(
            try connection.exchange("GET \(list)?page_size=0 HTTP/1.1\r\nHost: h\r\n\(header)\r\n")
        )
        let write = parseResponses(
            try connection.exchange(
                "POST /v1/convai/agents/a/run-tests HTTP/1.1\r\nHost: h\r\n\(header)Content-Length: 2\r\n\r\n{}"
            )
        )

        #expect(invalid.first?.status == "HTTP/1.1 401 Unauthorized")
        #expect(invalid.first?.body == #"{"detail":{"status":"invalid_api_key","message":"Invalid API key"}}"#)
        #expect(write.first?.status == "HTTP/1.1 401 Unauthorized")
        #expect(connection.fixture.upstream.requests.isEmpty)
    }

    @Test func aTeamOverItsBudgetGets429WhileAnotherTeamsMissesGoThrough() throws {
        let connection = try connection()
        let alpha = "xi-api-key: alpha-token\r\n"

        for size in 1...2 {
            _ = try connection.exchange("GET \(list)?page_size=\(size) HTTP/1.1\r\nHost: h\r\n\(alpha)\r\n")
        }
        let refused = parseResponses(
            try connection.exchange("GET \(list)?page_size=3 HTTP/1.1\r\nHost: h\r\n\(alpha)\r\n")
        )
        let hit = parseResponses(try connection.exchange("GET \(list)?page_size=1 HTTP/1.1\r\nHost: h\r\n\(alpha)\r\n"))
        let beta = parseResponses(
            try connection.exchange("GET \(list)?page_size=3 HTTP/1.1\r\nHost: h\r\nxi-api-key: beta-token\r\n\r\n")
        )

        #expect(refused.first?.status == "HTTP/1.1 429 Too Many Requests")
        #expect(refused.first?.headers["retry-after"] == "30")
        #expect(refused.first?.body.contains("rate_limit_exceeded") == true)
        #expect(hit.first?.status == "HTTP/1.1 200 OK")
        #expect(beta.first?.status == "HTTP/1.1 200 OK")
        #expect(connection.fixture.upstream.requests.count == 3)
    }

    @Test func aTeamOverBudgetGetsAStalePage() throws {
        let connection = try connection(staleSeconds: 300)
        let alpha = "xi-api-key: alpha-token\r\n"
        for size in 1...2 {
            _ = try connection.exchange("GET \(list)?page_size=\(size) HTTP/1.1\r\nHost: h\r\n\(alpha)\r\n")
        }
        connection.fixture.clock.advance(seconds: 31)

        let stale = parseResponses(
            try connection.exchange("GET \(list)?page_size=1 HTTP/1.1\r\nHost: h\r\n\(alpha)\r\n")
        )

        #expect(stale.first?.status == "HTTP/1.1 200 OK")
        #expect(stale.first?.headers["cache-status"]?.contains("stale") == true)
        // 31 s refilled one token of the two a minute: the first stale hit's refresh spent it. Now none is
        // left: a miss is refused, a stale page is still served (without a refresh).
        let miss = parseResponses(
            try connection.exchange("GET \(list)?page_size=9 HTTP/1.1\r\nHost: h\r\n\(alpha)\r\n")
        )
        let again = parseResponses(
            try connection.exchange("GET \(list)?page_size=2 HTTP/1.1\r\nHost: h\r\n\(alpha)\r\n")
        )
        #expect(miss.first?.status == "HTTP/1.1 429 Too Many Requests")
        #expect(again.first?.status == "HTTP/1.1 200 OK")
        #expect(again.first?.headers["cache-status"]?.contains("stale") == true)
        #expect(connection.fixture.upstream.requests.count == 3)
    }

    @Test func runTestsDropsThatAgentsPagesAndThoseWithoutAnAgentButNoOthers() throws {
        let connection = try connection()
        let beta = "xi-api-key: beta-token\r\n"
        for query in ["agent_id=one", "agent_id=two", "page_size=5"] {
            _ = try connection.exchange("GET \(list)?\(query) HTTP/1.1\r\nHost: h\r\n\(beta)\r\n")
        }

        let body = #"{"test_ids":["t"]}"#
        let started = parseResponses(
            try connection.exchange(
                "POST /v1/convai/agents/one/run-tests HTTP/1.1\r\nHost: h\r\n\(beta)Content-Type: application/json\r\n"
                    + "Content-Length: \(body.utf8.count)\r\n\r\n\(body)"
            )
        )
        let one = parseResponses(try connection.exchange("GET \(list)?agent_id=one HTTP/1.1\r\nHost: h\r\n\(beta)\r\n"))
        let two = parseResponses(try connection.exchange("GET \(list)?agent_id=two HTTP/1.1\r\nHost: h\r\n\(beta)\r\n"))

        #expect(started.first?.status == "HTTP/1.1 200 OK")
        let post = try #require(connection.fixture.upstream.requests.first { $0.method == .POST })
        #expect(post.target == "/v1/convai/agents/one/run-tests")
        #expect(post.headers["xi-api-key"] == ["secret-upstream-key"])
        #expect(post.headers["Content-Type"] == ["application/json"])
        #expect(post.body.map { String(buffer: $0) } == #"{"test_ids":["t"]}"#)
        #expect(one.first?.headers["cache-status"]?.contains("fwd=miss") == true)
        #expect(two.first?.headers["cache-status"]?.hasPrefix("xi-gateway; hit") == true)
        #expect(connection.fixture.cache.statistics.entries == 2)
    }

    @Test func resubmitDropsThePagesOfTheAgentInItsBody() throws {
        let connection = try connection()
        let beta = "xi-api-key: beta-token\r\n"
        for query in ["agent_id=one", "agent_id=two"] {
            _ = try connection.exchange("GET \(list)?\(query) HTTP/1.1\r\nHost: h\r\n\(beta)\r\n")
        }
        let body = #"{"agent_id":"two"}"#

        _ = try connection.exchange(
            "POST /v1/convai/test-invocations/inv_1/resubmit HTTP/1.1\r\nHost: h\r\n\(beta)Content-Length: \(body.utf8.count)\r\n\r\n\(body)"
        )

        let two = parseResponses(try connection.exchange("GET \(list)?agent_id=two HTTP/1.1\r\nHost: h\r\n\(beta)\r\n"))
        let one = parseResponses(try connection.exchange("GET \(list)?agent_id=one HTTP/1.1\r\nHost: h\r\n\(beta)\r\n"))
        #expect(two.first?.headers["cache-status"]?.contains("fwd=miss") == true)
        #expect(one.first?.headers["cache-status"]?.hasPrefix("xi-gateway; hit") == true)
    }

    @Test func readingOneInvocationIsForwardedAndNeverCached() throws {
        let connection = try connection()
        for _ in 0..<2 {
            let answer = parseResponses(
                try connection.exchange(
                    "GET /v1/convai/test-invocations/inv_7 HTTP/1.1\r\nHost: h\r\nxi-api-key: beta-token\r\n\r\n"
                )
            )
            #expect(answer.first?.body == #"{"ok":true}"#)
        }
        #expect(
            connection.fixture.upstream.requests.map(\.target)
                == Array(repeating: "/v1/convai/test-invocations/inv_7", count: 2)
        )
    }

    @Test func aBodyOverOneMebibyteIs413() throws {
        let connection = try connection()
        let body = String(repeating: "x", count: 1024 * 1024 + 1)

        let answer = parseResponses(
            try connection.exchange(
                "POST /v1/convai/agents/a/run-tests HTTP/1.1\r\nHost: h\r\nxi-api-key: beta-token\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
            )
        )

        #expect(answer.first?.status == "HTTP/1.1 413 Payload Too Large")
        #expect(connection.fixture.upstream.requests.isEmpty)
    }

    @Test func passthroughOffMakesTheRoutes404() throws {
        let connection = try connection(passthrough: false)

        let answer = parseResponses(
            try connection.exchange(
                "GET /v1/convai/test-invocations/inv_7 HTTP/1.1\r\nHost: h\r\nxi-api-key: beta-token\r\n\r\n"
            )
        )

        #expect(answer.first?.status == "HTTP/1.1 404 Not Found")
        #expect(connection.fixture.upstream.requests.isEmpty)
    }

    @Test(
        arguments: [
            "/v1/convai/agents/a%2F..%2Fb/run-tests", "/v1/convai/agents/../run-tests",
            "/v1/convai/agents/a%20b/run-tests",
            "/v1/convai/test-invocations/%2e%2e/resubmit",
        ]
    )
    func pathSegmentsThatCouldChangeTheUpstreamPathAreNotForwarded(path: String) throws {
        let connection = try connection()
        let answer = parseResponses(
            try connection.exchange(
                "POST \(path) HTTP/1.1\r\nHost: h\r\nxi-api-key: beta-token\r\nContent-Length: 0\r\n\r\n"
            )
        )
        #expect(answer.first?.status == "HTTP/1.1 404 Not Found")
        #expect(connection.fixture.upstream.requests.isEmpty)
    }

    @Test func aReloadThatRemovesATeamRefusesItsTokenAtOnce() throws {
        let connection = try connection()
        #expect(
            parseResponses(
                try connection.exchange("GET \(list) HTTP/1.1\r\nHost: h\r\nxi-api-key: alpha-token\r\n\r\n")
            ).first?
            .status == "HTTP/1.1 200 OK"
        )

        connection.context.update(
            .init(
                accessLog: true,
                adminToken: nil,
                teams: try Self.registry("beta \(SHA256.hexDigest("beta-token".utf8))")
            )
        )

        let refused = parseResponses(
            try connection.exchange("GET \(list) HTTP/1.1\r\nHost: h\r\nxi-api-key: alpha-token\r\n\r\n")
        )
        #expect(refused.first?.status == "HTTP/1.1 401 Unauthorized")
    }

    @Test func theAccessLogAndTheMetricsNameTheTeam() throws {
        let lines = LogLines()
        let registry = PrometheusCollectorRegistry()
        let metrics = GatewayMetrics(registry: registry, libcurlVersion: "8.5.0")
        let connection = try connection(
            accessLogger: lines.logger(),
            metrics: metrics,
            renderMetrics: {
                var bytes: [UInt8] = []
                registry.emit(into: &bytes)
                return bytes
            }
        )
        let alpha = "xi-api-key: alpha-token\r\n"
        for size in [1, 1, 2, 3] {
            _ = try connection.exchange("GET \(list)?page_size=\(size) HTTP/1.1\r\nHost: h\r\n\(alpha)\r\n")
        }

        let text = parseResponses(try connection.exchange("GET /metrics HTTP/1.1\r\nHost: h\r\n\r\n")).first?.body ?? ""

        #expect(lines.all.first?.contains(#""team":"alpha""#) == true)
        #expect(text.contains(#"xi_gateway_team_requests_total{team="alpha"} 4"#))
        #expect(text.contains(#"xi_gateway_team_hits_total{team="alpha"} 1"#))
        #expect(text.contains(#"xi_gateway_team_upstream_requests_total{team="alpha"} 2"#))
        #expect(text.contains(#"xi_gateway_team_refusals_total{team="alpha"} 1"#))
    }
}
