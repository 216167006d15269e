import Foundation
import GatewayCore
import GatewayTesting
import NIOHTTP1
import Prometheus
import Testing

@testable import GatewayServer

@Suite("The status page and its figures")
struct StatusPageEndpointTests {
    private let list = "/v1/convai/test-invocations"

    /// Every key, in its place, with numbers as numbers: what the page's script reads.
    @Test func theReportIsExactJSON() {
        var cache = ResponseCache(maxBytes: 1 << 20, ttlSeconds: 60).statistics
        (cache.entries, cache.bytes, cache.evictions) = (7, 9000, 1)
        let report = StatusReport(
            version: "1.2.3",
            startedAt: 1_800_000_000,
            uptimeSeconds: 4000,
            lastMinute: StatusSample(
                at: 60_000_000_000,
                lookups: 300,
                hits: 200,
                upstream: .init(exchanges: ["429": 2, "200": 97, "timeout": 1], rejections: ["backing_off": 5]),
                teams: [:]
            ),
            perSecond: [(3, 2), (5, 5)],
            cache: cache,
            cacheMaxBytes: 1 << 20,
            agents: AgentPages(agents: [.init(id: "a\"b</script>", pages: 4)], moreAgents: 2, unfiltered: 3),
            governor: .init(inFlight: 1, queued: 2, limit: 4, backoffSecondsLeft: 9),
            waiters: 6,
            sharedTier: "up",
            teams: [
                .init(
                    name: "blue",
                    budgetPerMinute: 60,
                    remaining: 50,
                    total: BudgetCounts(spent: 10, refused: 1),
                    lastMinute: BudgetCounts(spent: 8, refused: 1)
                ),
                .init(name: "red", budgetPerMinute: nil, remaining: nil, total: .init(), lastMinute: .init()),
            ]
        )
        let expected = [
            #"{"version":"1.2.3","started_at":1800000000,"uptime_seconds":4000,"#,
            #""last_minute":{"seconds":60,"requests":300,"hits":200,"misses":100,"hit_ratio":0.6667,"#,
            #""requests_per_second":5,"upstream":{"200":97,"429":2,"timeout":1},"#,
            #""rejections":{"queue_full":0,"queue_timeout":0,"backing_off":5}},"#,
            #""per_second":{"requests":[3,5],"hits":[2,5]},"#,
            #""cache":{"entries":7,"bytes":9000,"max_bytes":1048576,"evictions":1,"#,
            #""agents":[{"agent_id":"a\"b</script>","pages":4}],"more_agents":2,"unfiltered_pages":3},"#,
            #""upstream":{"in_flight":1,"limit":4,"queued":2,"backoff_seconds_left":9,"singleflight_waiters":6},"#,
            #""shared_tier":"up","teams":[{"team":"blue","budget_per_minute":60,"remaining":50,"spent":10,"#,
            #""refused":1,"spent_last_minute":8,"refused_last_minute":1},{"team":"red","budget_per_minute":null,"#,
            #""remaining":null,"spent":0,"refused":0,"spent_last_minute":0,"refused_last_minute":0}]}"#,
        ].joined()
        #expect(report.json == expected)
        let parsed = try? JSONSerialization.jsonObject(with: Data(report.json.utf8))
        #expect(parsed != nil, "valid JSON")
    }

    @Test(arguments: [
        (2, 3, 4, "0.6667"), (1, 8, 1, "0.1"), (300, 60, 2, "5"), (38, 3, 2, "12.67"), (0, 7, 4, "0"), (1, 3, 0, "0"),
        (2, 3, 0, "1"), (1, 200, 2, "0.01"), (1, 201, 2, "0"),
    ])
    func decimalsAreRoundedHalfUp(numerator: Int, denominator: Int, places: Int, text: String) {
        #expect(StatusReport.decimal(numerator, over: denominator, places: places) == text)
    }

    /// What `Host` may name for the page and its figures: an address or localhost, never a site's name (a
    /// DNS-rebinding page in an operator's browser sends its own).
    @Test(
        arguments: [
            (nil, true), ("", true), ("127.0.0.1", true), ("127.0.0.1:9091", true), ("10.1.2.3:80", true),
            ("localhost:9091", true), ("LOCALHOST", true), ("[::1]:9091", true), ("[::1]", true),
            ("[fe80::1]:9091", true), ("evil.example", false), ("evil.example:9091", false),
            ("127.0.0.1.nip.io", false), ("1.2.3", false), ("256.1.1.1", false), ("localhost.evil.com", false),
            ("[::1]x", false), ("127.0.0.1:abc", false), ("[::1]:90x", false), ("[evil.example]", false),
        ] as [(String?, Bool)]
    )
    func theHostMustNameTheListenerDirectly(host: String?, direct: Bool) {
        #expect(StatusPage.isDirect(host: host) == direct)
    }

    @Test func aRebindingHostGetsNoFigures() throws {
        let connection = try ConnectionFixture(role: .admin)
        for target in ["/", "/admin/status"] {
            let refused = try #require(
                parseResponses(try connection.exchange("GET \(target) HTTP/1.1\r\nHost: rebind.example:9091\r\n\r\n"))
                    .first
            )
            #expect(refused.status == "HTTP/1.1 403 Forbidden")
            #expect(refused.body.contains(#""status":"host_not_direct""#))
            let direct = parseResponses(
                try connection.exchange("GET \(target) HTTP/1.1\r\nHost: 127.0.0.1:9091\r\n\r\n")
            )
            #expect(direct.first?.status == "HTTP/1.1 200 OK")
        }
    }

    @Test func thePageAndItsFiguresAreOnTheAdminListenerOnly() {
        #expect(Route(method: .GET, uri: "/", role: .admin) == .statusPage(isHead: false))
        #expect(Route(method: .HEAD, uri: "/", role: .admin) == .statusPage(isHead: true))
        #expect(Route(method: .GET, uri: "/?refresh=1", role: .admin) == .statusPage(isHead: false))
        #expect(Route(method: .GET, uri: "/admin/status", role: .admin) == .status)
        #expect(Route(method: .POST, uri: "/", role: .admin) == .refuse(.methodNotAllowed(allow: "GET, HEAD")))
        #expect(Route(method: .POST, uri: "/admin/status", role: .admin) == .refuse(.methodNotAllowed(allow: "GET")))
        // Where teams connect, they do not exist: not even with the admin token on a combined listener.
        for role in [ListenerRole.api, .combined] {
            #expect(Route(method: .GET, uri: "/", role: role) == .refuse(.notFound))
            #expect(Route(method: .GET, uri: "/admin/status", role: role) == .refuse(.notFound))
        }
        #expect(Route(method: .GET, uri: "/index.html", role: .admin) == .refuse(.notFound))
    }

    /// The page is one document: its script and style inline, allowed by hash and nothing else; no address
    /// outside it but `data:`; not stored, not framed.
    @Test func thePageIsSelfContainedAndLockedDown() throws {
        let connection = try ConnectionFixture(role: .admin)
        let page = try #require(
            parseResponses(try connection.exchange("GET / HTTP/1.1\r\nHost: 127.0.0.1:9091\r\n\r\n")).first
        )
        let head = try #require(
            parseResponses(
                try connection.exchange("HEAD / HTTP/1.1\r\nHost: 127.0.0.1:9091\r\n\r\n"),
                headRequests: [0]
            ).first
        )

        #expect(page.status == "HTTP/1.1 200 OK")
        #expect(page.headers["content-type"] == "text/html; charset=utf-8")
        #expect(page.headers["cache-control"] == "no-store")
        #expect(page.headers["x-frame-options"] == "DENY")
        #expect(page.headers["x-content-type-options"] == "nosniff")
        #expect(head.headers["content-length"] == page.headers["content-length"])
        #expect(head.body.isEmpty)

        func inline(_ tag: String) throws -> String {
            let open = try #require(page.body.range(of: "<\(tag)>"))
            let close = try #require(page.body.range(of: "</\(tag)>"))
            return String(page.body[open.upperBound..<close.lowerBound])
        }
        func digest(_ text: String) -> String { Data(SHA256.hash(text.utf8)).base64EncodedString() }
        #expect(
            page.headers["content-security-policy"]
                == "default-src 'none'; script-src 'sha256-\(digest(try inline("script")))'; "
                + "style-src 'sha256-\(digest(try inline("style")))'; connect-src 'self'; img-src data:; "
                + "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        )
        #expect(page.body.components(separatedBy: "<script").count == 2, "one script")
        #expect(page.body.components(separatedBy: "<style").count == 2, "one style")
        for attribute in ["src=", "href=", "action=", "url("] {
            for part in page.body.components(separatedBy: attribute).dropFirst() {
                #expect(part.hasPrefix("\"data:"), "\(attribute) must not reach outside the page")
            }
        }
        // The only addresses: the SVG namespace (a name, never fetched) and the page's own endpoints.
        let addresses = page.body.components(separatedBy: "http").dropFirst()
        #expect(addresses.count == 1)
        #expect(addresses.allSatisfy { $0.hasPrefix("://www.w3.org/2000/svg\"") })
        #expect(page.body.contains(#"fetch("/admin/status""#))
        // Figures and agent ids go in as text, never as markup.
        #expect(!page.body.contains("innerHTML") && !page.body.contains("outerHTML"))
        #expect(!page.body.contains("document.write") && !page.body.contains("eval("))
        #expect(!page.body.contains("localStorage.") && !page.body.contains("sessionStorage."))
        #expect(!page.body.contains("document.cookie"))
    }

    /// What the page reads, after one miss, one hit and one invalid request: counted from start, since the
    /// gateway is younger than a minute.
    @Test func theFiguresCountWhatHappened() throws {
        let metrics = GatewayMetrics(registry: PrometheusCollectorRegistry(), libcurlVersion: "test")
        let fixture = ServiceFixture(metrics: metrics)
        let connection = try ConnectionFixture(fixture: fixture, metrics: metrics, role: .admin)
        let api = try ConnectionFixture(fixture: fixture, metrics: metrics, role: .api)
        for query in ["agent_id=a", "agent_id=a", "page_size=0"] {
            _ = try api.exchange("GET \(list)?\(query) HTTP/1.1\r\nHost: h\r\n\r\n")
        }
        let answer = try #require(
            parseResponses(try connection.exchange("GET /admin/status HTTP/1.1\r\nHost: 127.0.0.1:9091\r\n\r\n")).first
        )
        #expect(answer.headers["content-type"] == "application/json")
        #expect(answer.headers["cache-control"] == "no-store")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [String: Any])
        let minute = try #require(report["last_minute"] as? [String: Any])
        #expect(minute["requests"] as? Int == 2, "the invalid request never looked in the cache")
        #expect(minute["hits"] as? Int == 1)
        #expect(minute["hit_ratio"] as? Double == 0.5)
        #expect(minute["upstream"] as? [String: Int] == ["200": 1])
        let cache = try #require(report["cache"] as? [String: Any])
        #expect(cache["entries"] as? Int == 1)
        #expect(cache["max_bytes"] as? Int == fixture.cache.maxBytes)
        let agents = try #require(cache["agents"] as? [[String: Any]])
        #expect(agents.map { "\($0["agent_id"] as? String ?? "?"):\($0["pages"] as? Int ?? -1)" } == ["a:1"])
        #expect(report["shared_tier"] as? String == "off")
        #expect(report["version"] as? String == GatewayVersion.current)
        #expect((report["per_second"] as? [String: [Int]])?["requests"]?.count == 60)
        #expect(fixture.upstream.requests.count == 1)

        let refused = parseResponses(try api.exchange("GET /admin/status HTTP/1.1\r\nHost: 127.0.0.1:9091\r\n\r\n"))
            .first
        #expect(refused?.status == "HTTP/1.1 404 Not Found")
    }
}
