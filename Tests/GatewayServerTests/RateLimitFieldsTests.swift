import GatewayCore
import GatewayTesting
import NIOCore
import NIOHTTP1
import Prometheus
import Testing

@testable import GatewayServer

/// Answers to a team with a budget carry `RateLimit-Policy` and `RateLimit`; the admin statistics list each
/// team's budget, spends and refusals.
@Suite("Teams: RateLimit fields and budget statistics")
struct RateLimitFieldsTests {
    private let list = "/v1/convai/test-invocations"
    private let token = "admin-token-0123456789abcdef"

    private func connection() throws -> ConnectionFixture {
        let teams = try TeamRegistry(
            parsing: """
                alpha \(SHA256.hexDigest("alpha-token".utf8)) upstream_per_minute=2
                beta \(SHA256.hexDigest("beta-token".utf8))
                """,
            source: "test"
        )
        return try ConnectionFixture(adminToken: token, teams: teams)
    }

    private func get(
        _ connection: ConnectionFixture,
        _ query: String,
        token: String = "alpha-token"
    ) throws -> (status: String, headers: [String: String], body: String) {
        let text = "GET \(list)?\(query) HTTP/1.1\r\nHost: h\r\nxi-api-key: \(token)\r\n\r\n"
        return try #require(parseResponses(try connection.exchange(text)).first)
    }

    @Test func everyAnswerToATeamWithABudgetSaysWhatIsLeft() throws {
        let connection = try connection()
        let miss = try get(connection, "page_size=1")
        #expect(miss.headers["ratelimit-policy"] == #""upstream";q=2;w=60"#)
        #expect(miss.headers["ratelimit"] == #""upstream";r=1;t=30"#)
        let hit = try get(connection, "page_size=1")
        #expect(hit.headers["cache-status"]?.contains("hit") == true)
        #expect(hit.headers["ratelimit"] == #""upstream";r=1;t=30"#, "a hit spends nothing")

        // A spend moves what the next hit on this connection says, within the same second.
        _ = try get(connection, "page_size=2")
        #expect(try get(connection, "page_size=1").headers["ratelimit"] == #""upstream";r=0;t=30"#)
        connection.fixture.clock.advance(seconds: 12)
        let refused = try get(connection, "page_size=3")
        #expect(refused.status == "HTTP/1.1 429 Too Many Requests")
        #expect(refused.headers["ratelimit"] == #""upstream";r=0;t=18"#)
        let invalid = try get(connection, "page_size=0")
        #expect(invalid.status.hasPrefix("HTTP/1.1 422"))
        #expect(invalid.headers["ratelimit-policy"] == #""upstream";q=2;w=60"#, "on every answer to the team")
    }

    @Test func aTeamWithoutABudgetAndAnOpenGatewayGetNone() throws {
        let connection = try connection()
        let answer = try get(connection, "page_size=1", token: "beta-token")
        #expect(answer.status == "HTTP/1.1 200 OK")
        #expect(answer.headers["ratelimit"] == nil && answer.headers["ratelimit-policy"] == nil)
        let open = try ConnectionFixture()
        let openAnswer = try #require(
            parseResponses(try open.exchange("GET \(list) HTTP/1.1\r\nHost: h\r\n\r\n")).first
        )
        #expect(openAnswer.headers["ratelimit"] == nil)
    }

    @Test func theStatisticsListEachTeamsBudgetSpendsAndRefusals() throws {
        let connection = try connection()
        _ = try get(connection, "page_size=1")
        _ = try get(connection, "page_size=2")
        _ = try get(connection, "page_size=3")
        _ = try get(connection, "page_size=4", token: "beta-token")
        let stats = try #require(
            parseResponses(
                try connection.exchange(
                    "GET /admin/cache/stats HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer \(token)\r\n\r\n"
                )
            ).first
        )
        #expect(
            stats.body.hasSuffix(
                #""teams":{"alpha":{"budget_per_minute":2,"remaining":0,"spent":2,"refused":1},"#
                    + #""beta":{"budget_per_minute":null,"remaining":null,"spent":1,"refused":0}}}"#
            ),
            "\(stats.body)"
        )
    }

    /// `/metrics` gives each budgeted team's budget and what is left of it, as the statistics do.
    @Test func theMetricsGiveEachBudgetedTeamsBudgetAndWhatIsLeft() throws {
        let teams = try TeamRegistry(
            parsing: """
                alpha \(SHA256.hexDigest("alpha-token".utf8)) upstream_per_minute=2
                beta \(SHA256.hexDigest("beta-token".utf8))
                """,
            source: "test"
        )
        let registry = PrometheusCollectorRegistry()
        let connection = try ConnectionFixture(
            teams: teams,
            metrics: GatewayMetrics(registry: registry, libcurlVersion: "test"),
            renderMetrics: {
                var bytes: [UInt8] = []
                registry.emit(into: &bytes)
                return bytes
            }
        )
        _ = try get(connection, "page_size=1")
        let scrape = try #require(
            parseResponses(try connection.exchange("GET /metrics HTTP/1.1\r\nHost: h\r\n\r\n")).first
        )
        let exposition = Exposition(scrape.body)
        #expect(exposition.value("xi_gateway_team_budget_per_minute", #"team="alpha""#) == 2)
        #expect(exposition.value("xi_gateway_team_budget_remaining", #"team="alpha""#) == 1)
        #expect(exposition.value("xi_gateway_team_budget_per_minute", #"team="beta""#) == nil, "unlimited")
    }
}
