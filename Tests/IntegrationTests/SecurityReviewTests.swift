import GatewayCore
import GatewayServer
import GatewayTesting
import NIOCore
import Prometheus
import Testing

/// What a security review found, each closed and checked over real sockets: bodies are not read before
/// identity, refusals leave a trace, secrets in targets stay out of the log, fragments are refused, and a
/// client that half-closes still gets its answer.
@Suite("Security review, over real sockets")
struct SecurityReviewTests {
    private let list = "/v1/convai/test-invocations"
    private static let token = "team_token_0123456789abcdef"

    private static func teams() throws -> TeamRegistry {
        try TeamRegistry(parsing: "alpha \(SHA256.hexDigest(token.utf8))\n", source: "test")
    }

    /// Without a known token, a request is answered `401` as soon as its head has arrived: its body (up to
    /// 1 MiB, never sent here) is not waited for, and the connection closes.
    @Test(arguments: [
        "POST /v1/convai/agents/ag_1/run-tests HTTP/1.1\r\nHost: h\r\nContent-Length: 1048576\r\n\r\n",
        "POST /v1/convai/agents/ag_1/run-tests HTTP/1.1\r\nHost: h\r\nxi-api-key: wrong\r\nContent-Length: 9000\r\n\r\n",
        "POST /v1/convai/agents/ag_1/run-tests HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n",
        "GET /v1/convai/test-invocations HTTP/1.1\r\nHost: h\r\nContent-Length: 60000\r\n\r\n",
    ])
    func aRequestWithoutAKnownTokenIsRefusedFromItsHead(_ head: String) async throws {
        let gateway = try await GatewayHarness.start(teams: try Self.teams())
        let connection = try TestHTTPConnection(port: gateway.port)
        try connection.send(head)

        let response = try connection.readResponse()

        #expect(response.status == 401)
        #expect(response.header("Connection") == "close")
        #expect(connection.waitForClose())
        #expect(gateway.upstream.requests.isEmpty)
        try await gateway.stop()
    }

    @Test func aKnownTokenStillSendsItsBody() async throws {
        let gateway = try await GatewayHarness.start(teams: try Self.teams())
        let connection = try TestHTTPConnection(port: gateway.port)
        try connection.send(
            "GET \(list)?page_size=2 HTTP/1.1\r\nHost: h\r\nxi-api-key: \(Self.token)\r\nContent-Length: 3\r\n\r\nabc"
        )
        #expect(try connection.readResponse().status == 200)
        try await gateway.stop()
    }

    /// Requests refused by the reader or before their body get an access-log line with a bounded reason and
    /// no request bytes beyond the method, and count in `xi_gateway_refused_requests_total{reason}`.
    @Test func refusalsGetALogLineAndACounter() async throws {
        let lines = LogLines()
        let registry = PrometheusCollectorRegistry()
        let metrics = GatewayMetrics(registry: registry, libcurlVersion: "8.5.0")
        let gateway = try await GatewayHarness.start(accessLogger: lines.logger(), metrics: metrics)
        let attempts: [(request: String, status: Int)] = [
            ("POST /smuggle HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
            ("GET /?secret=sk_in_a_refused_target HTTP/1.1\r\nHost: h\r\nX-A: a\r\n b\r\n\r\n", 400),
            ("GET / HTTP/1.1\r\nHost: h\r\nX-Pad: " + String(repeating: "p", count: 20_000) + "\r\n\r\n", 431),
            ("GET /healthz HTTP/1.1\r\n\r\n", 400),
            (
                "POST /v1/convai/agents/a/run-tests HTTP/1.1\r\nHost: h\r\nExpect: later\r\nContent-Length: 2\r\n\r\n",
                417
            ),
        ]
        for attempt in attempts {
            let connection = try TestHTTPConnection(port: gateway.port)
            try connection.send(attempt.request)
            #expect(try connection.readResponse().status == attempt.status)
        }

        let logged = lines.all
        #expect(logged.count == attempts.count)
        for reason in ["conflicting-length", "folded-field", "head-too-large", "missing-host", "expectation-failed"] {
            #expect(logged.contains { $0.contains(#""reason":"\#(reason)""#) }, "no line with \(reason)")
            var bytes: [UInt8] = []
            registry.emit(into: &bytes)
            let text = String(decoding: bytes, as: UTF8.self)
            #expect(text.contains(#"xi_gateway_refused_requests_total{reason="\#(reason)"} 1"#))
        }
        #expect(!logged.contains { $0.contains("sk_in_a_refused_target") || $0.contains("smuggle") })
        try await gateway.stop()
    }

    /// A token put in the query by mistake never reaches the access log: on the list route values of
    /// parameters outside the schema are masked, on other routes the query is left out.
    @Test func secretsInTargetsAreNotLogged() async throws {
        let lines = LogLines()
        let gateway = try await GatewayHarness.start(accessLogger: lines.logger())
        let listAnswer = try gateway.get("\(list)?page_size=2&xi-api-key=sk_leak_one&token=sk_leak_two&sk_bare_three")
        let otherAnswer = try gateway.get("/healthz?token=sk_leak_four")

        #expect(listAnswer.status == 422)
        #expect(otherAnswer.status == 200)
        let logged = lines.all.joined()
        #expect(logged.contains(#""path":"\#(list)?page_size=2&xi-api-key=***&token=***&***""#))
        #expect(logged.contains(#""path":"/healthz""#))
        #expect(!logged.contains("sk_leak") && !logged.contains("sk_bare"))
        try await gateway.stop()
    }

    /// A fragment is not part of a request target (RFC 9112, 3.2): `400`, and nothing reaches the upstream
    /// or the cache.
    @Test func aRawHashInTheTargetIs400() async throws {
        let gateway = try await GatewayHarness.start()
        let response = try gateway.get("\(list)?agent_id=a#b")
        #expect(response.status == 400)
        #expect(gateway.upstream.requests.isEmpty)
        try await gateway.stop()
    }

    /// A client that sends its requests and shuts down its sending side gets every answer, including one
    /// that waits for the upstream, and then the connection closes.
    @Test func aHalfClosedClientIsAnsweredThenClosed() async throws {
        let gateway = try await GatewayHarness.start { .page(for: $0.uri, delay: .milliseconds(300)) }
        let connection = try TestHTTPConnection(port: gateway.port)
        try connection.send(
            "GET \(list)?agent_id=half HTTP/1.1\r\nHost: h\r\n\r\nGET /healthz HTTP/1.1\r\nHost: h\r\n\r\n"
        )
        connection.shutdownWriting()

        let first = try connection.readResponse()
        let second = try connection.readResponse()

        #expect(first.status == 200)
        #expect(first.header("Connection") == nil)
        #expect(second.status == 200)
        #expect(second.header("Connection") == "close")
        #expect(connection.waitForClose())
        #expect(gateway.upstream.requests.count == 1)
        try await gateway.stop()
    }
}
