import GatewayCore
import GatewayTesting
import Logging
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Prometheus
import Synchronization
import Testing

@testable import GatewayServer

@Suite("Operations: health, readiness, metrics, access log, admin API")
struct OperationsTests {
    private let list = "/v1/convai/test-invocations"
    private let token = "admin-token-0123456789abcdef"

    @Test func healthIsAlways200AndReadinessFollowsTheServersState() throws {
        let connection = try ConnectionFixture()

        let notYet = parseResponses(try connection.exchange("GET /readyz HTTP/1.1\r\nHost: h\r\n\r\n"))
        connection.context.setReady(true)
        let ready = parseResponses(try connection.exchange("GET /readyz HTTP/1.1\r\nHost: h\r\n\r\n"))
        connection.context.setReady(false)
        let stopping = parseResponses(try connection.exchange("GET /readyz HTTP/1.1\r\nHost: h\r\n\r\n"))
        let health = parseResponses(try connection.exchange("GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n"))

        #expect(notYet.first?.status == "HTTP/1.1 503 Service Unavailable")
        #expect(ready.first?.status == "HTTP/1.1 200 OK")
        #expect(ready.first?.body == #"{"status":"ready"}"#)
        #expect(stopping.first?.status == "HTTP/1.1 503 Service Unavailable")
        #expect(health.first?.body == #"{"status":"ok"}"#)
        #expect(connection.fixture.upstream.requests.isEmpty)
    }

    @Test func metricsCountRequestsByRouteStatusAndCacheResult() throws {
        let registry = PrometheusCollectorRegistry()
        let metrics = GatewayMetrics(registry: registry, libcurlVersion: "8.5.0")
        let connection = try ConnectionFixture(
            fixture: ServiceFixture(metrics: metrics),
            metrics: metrics,
            renderMetrics: {
                var bytes: [UInt8] = []
                registry.emit(into: &bytes)
                return bytes
            }
        )

        for target in ["\(list)?page_size=5", "\(list)?page_size=5", "\(list)?page_size=005", "\(list)?page_size=0"] {
            _ = try connection.exchange("GET \(target) HTTP/1.1\r\nHost: h\r\n\r\n")
        }
        _ = try connection.exchange("GET /nowhere HTTP/1.1\r\nHost: h\r\n\r\n")
        let scrape = parseResponses(try connection.exchange("GET /metrics HTTP/1.1\r\nHost: h\r\n\r\n")).first
        let text = scrape?.body ?? ""

        #expect(scrape?.headers["content-type"]?.hasPrefix("text/plain") == true)
        #expect(text.contains(#"xi_gateway_requests_total{route="list",status="2xx",cache="miss"} 1"#))
        #expect(text.contains(#"xi_gateway_requests_total{route="list",status="2xx",cache="hit"} 2"#))
        #expect(text.contains(#"xi_gateway_requests_total{route="list",status="4xx",cache="none"} 1"#))
        #expect(text.contains(#"xi_gateway_requests_total{route="other",status="4xx",cache="none"} 1"#))
        #expect(text.contains(#"xi_gateway_upstream_requests_total{status="200",outcome="ok"} 1"#))
        #expect(text.contains("xi_gateway_cache_entries 1"))
        #expect(text.contains("xi_gateway_upstream_in_flight 0"))
        #expect(text.contains(#"xi_gateway_request_duration_seconds_count{route="list",cache="miss"} 1"#))
        #expect(text.contains(#"xi_gateway_request_duration_seconds_count{route="list",cache="hit"} 2"#))
        #expect(text.contains("xi_gateway_upstream_duration_seconds_bucket"))
        #expect(!text.contains("page_size"))
    }

    /// A connection keeps the settings it read until a reload moves their version: then its next request
    /// follows the new ones, and the one after a second reload follows those.
    @Test func aReloadReachesConnectionsAlreadyOpen() throws {
        let lines = LogLines()
        let connection = try ConnectionFixture(accessLogger: lines.logger())
        _ = try connection.exchange("GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n")
        #expect(lines.all.count == 1)

        connection.context.update(.init(accessLog: false, adminToken: nil))
        _ = try connection.exchange("GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n")
        _ = try connection.exchange("GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n")
        #expect(lines.all.count == 1)

        connection.context.update(.init(accessLog: true, adminToken: nil))
        _ = try connection.exchange("GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n")
        #expect(lines.all.count == 2)
    }

    @Test func everyRequestGetsOneAccessLogLineAndARequestID() throws {
        let lines = LogLines()
        let connection = try ConnectionFixture(accessLogger: lines.logger())

        let first = parseResponses(
            try connection.exchange("GET \(list)?search=a+b HTTP/1.1\r\nHost: h\r\nX-Request-Id: client-id_1.2\r\n\r\n")
        )
        let second = parseResponses(
            try connection.exchange("GET \(list)?search=a+b HTTP/1.1\r\nHost: h\r\nX-Request-Id: bad id!\r\n\r\n")
        )

        #expect(first.first?.headers["x-request-id"] == "client-id_1.2")
        let generated = try #require(second.first?.headers["x-request-id"])
        #expect(generated != "bad id!")
        #expect(connection.fixture.upstream.requests.first?.headers["X-Request-Id"] == ["client-id_1.2"])
        #expect(lines.all.count == 2)
        let line = try #require(lines.all.first)
        #expect(line.hasPrefix(#"{"time":""#))
        #expect(line.hasSuffix("}\n"))
        for field in [
            #""request_id":"client-id_1.2""#, #""method":"GET""#, #""path":"\#(list)?search=a+b""#,
            #""status":200"#, #""cache":"miss""#, #""upstream_status":200"#, #""bytes":"#, #""duration_ms":"#,
            #""client":"127.0.0.1""#, #""label":"access""#,
        ] {
            #expect(line.contains(field), "missing \(field) in \(line)")
        }
        #expect(lines.all[1].contains(#""cache":"hit""#))
        #expect(lines.all[1].contains(#""request_id":"\#(generated)""#))
    }

    @Test func theAdminAPIIsOffWithoutAToken() throws {
        let connection = try ConnectionFixture()

        let stats = parseResponses(try connection.exchange("GET /admin/cache/stats HTTP/1.1\r\nHost: h\r\n\r\n"))
        let purge = parseResponses(
            try connection.exchange("POST /admin/cache/purge HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n")
        )

        #expect(stats.first?.status == "HTTP/1.1 404 Not Found")
        #expect(purge.first?.status == "HTTP/1.1 404 Not Found")
    }

    @Test(arguments: [
        "", "Authorization: Bearer wrong-token-0123456789\r\n", "Authorization: admin-token-0123456789abcdef\r\n",
    ])
    func theAdminAPIRefusesAWrongOrMissingToken(header: String) throws {
        let connection = try ConnectionFixture(adminToken: token)
        _ = try connection.exchange("GET \(list) HTTP/1.1\r\nHost: h\r\n\r\n")

        let purge = parseResponses(
            try connection.exchange("POST /admin/cache/purge HTTP/1.1\r\nHost: h\r\n\(header)Content-Length: 0\r\n\r\n")
        )

        #expect(purge.first?.status == "HTTP/1.1 401 Unauthorized")
        #expect(purge.first?.headers["www-authenticate"] == "Bearer")
        #expect(connection.fixture.cache.statistics.entries == 1)
    }

    @Test func purgeByAgentDropsExactlyThatAgentsPagesAndThoseWithoutAnAgentFilter() throws {
        let connection = try ConnectionFixture(adminToken: token)
        for query in ["agent_id=a", "agent_id=a&page_size=5", "agent_id=ab", "agent_id=b", "", "cursor=x"] {
            _ = try connection.exchange("GET \(list)?\(query) HTTP/1.1\r\nHost: h\r\n\r\n")
        }
        #expect(connection.fixture.cache.statistics.entries == 6)
        let auth = "Authorization: Bearer \(token)\r\n"

        let purged = parseResponses(
            try connection.exchange(
                "POST /admin/cache/purge?agent_id=a HTTP/1.1\r\nHost: h\r\n\(auth)Content-Length: 0\r\n\r\n"
            )
        )
        #expect(purged.first?.body == #"{"purged":4}"#)
        #expect(connection.fixture.cache.statistics.entries == 2)
        let stillCached = parseResponses(try connection.exchange("GET \(list)?agent_id=ab HTTP/1.1\r\nHost: h\r\n\r\n"))
        #expect(stillCached.first?.headers["cache-status"]?.hasPrefix("xi-gateway; hit") == true)

        let all = parseResponses(
            try connection.exchange("POST /admin/cache/purge HTTP/1.1\r\nHost: h\r\n\(auth)Content-Length: 0\r\n\r\n")
        )
        #expect(all.first?.body == #"{"purged":2}"#)
        #expect(connection.fixture.cache.statistics.entries == 0)
    }

    @Test func statsReportTheCacheTheHitRatioAndTheGovernor() throws {
        let connection = try ConnectionFixture(adminToken: token)
        for _ in 0..<4 { _ = try connection.exchange("GET \(list) HTTP/1.1\r\nHost: h\r\n\r\n") }

        let stats = parseResponses(
            try connection.exchange(
                "GET /admin/cache/stats HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer \(token)\r\n\r\n"
            )
        )
        let body = try #require(stats.first?.body)

        #expect(body.hasPrefix(#"{"entries":1,"bytes":"#))
        #expect(body.contains(#""lookups":4,"hits":3,"hit_ratio":0.75"#))
        #expect(body.contains(#""governor":{"in_flight":0,"queued":0,"limit":4,"backoff_seconds_left":0}"#))
        #expect(!body.contains("secret-upstream-key"))
    }
}
