import GatewayCore
import GatewayCurl
import GatewayServer
import GatewayTesting
import NIOCore
import NIOHTTP1
import Testing

@Suite("End to end: listener, cache and libcurl against a fake upstream")
struct EndToEndTests {
    private let list = "/v1/convai/test-invocations"

    @Test func aMissThenAHitServeIdenticalBytesWithOneUpstreamRequest() async throws {
        let gateway = try await GatewayHarness.start()

        let miss = try gateway.get("\(list)?page_size=5&agent_id=agent_1")
        let hit = try gateway.get("\(list)?agent_id=agent_%31&page_size=005")

        #expect(miss.status == 200)
        #expect(hit.status == 200)
        #expect(miss.body == hit.body)
        #expect(miss.text == FakeUpstream.page(for: "\(list)?agent_id=agent_1&page_size=5"))
        #expect(miss.header("Cache-Status") == "xi-gateway; fwd=miss; fwd-status=200; stored")
        #expect(hit.header("Cache-Status")?.hasPrefix("xi-gateway; hit; ttl=") == true)
        #expect(hit.header("Age") != nil)
        #expect(hit.header("Content-Type") == "application/json")
        #expect(gateway.upstream.requests.count == 1)
        try await gateway.stop()
    }

    @Test func theUpstreamSeesTheGatewaysKeyAndNoneOfTheClientsHeaders() async throws {
        let gateway = try await GatewayHarness.start()

        _ = try gateway.get(
            list,
            headers: [
                ("xi-api-key", "a-client-key"), ("Authorization", "Bearer client"), ("Cookie", "session=1"),
                ("X-Forwarded-For", "10.0.0.1"),
            ]
        )

        let received = try #require(gateway.upstream.requests.first)
        #expect(received.headers["xi-api-key"] == [GatewayHarness.apiKey])
        #expect(received.headers["authorization"].isEmpty)
        #expect(received.headers["cookie"].isEmpty)
        #expect(received.headers["x-forwarded-for"].isEmpty)
        #expect(received.headers["user-agent"] == ["xi-gateway/\(GatewayVersion.current)"])
        #expect(received.uri == "\(list)?page_size=30")
        try await gateway.stop()
    }

    @Test func aValueCannotAddAParameterUpstream() async throws {
        let gateway = try await GatewayHarness.start()

        let response = try gateway.get("\(list)?agent_id=a%26page_size%3D100")

        #expect(response.status == 200)
        let received = try #require(gateway.upstream.requests.first)
        let query = received.uri.split(separator: "?", maxSplits: 1)[1]
        let upstreamView = try ListQuery.parse(query)
        #expect(upstreamView["agent_id"] == "a&page_size=100")
        #expect(upstreamView["page_size"] == "30")
        try await gateway.stop()
    }

    @Test func otherStatusesArePassedThroughAndNotStored() async throws {
        let gateway = try await GatewayHarness.start { _ in
            .init(status: 401, body: #"{"detail":{"status":"invalid_api_key","message":"Invalid API key"}}"#)
        }

        let first = try gateway.get(list)
        let second = try gateway.get(list)

        #expect(first.status == 401)
        #expect(first.text == #"{"detail":{"status":"invalid_api_key","message":"Invalid API key"}}"#)
        #expect(second.status == 401)
        #expect(gateway.upstream.requests.count == 2)
        try await gateway.stop()
    }

    @Test func invalidQueriesGet422AndAreNeverForwarded() async throws {
        let gateway = try await GatewayHarness.start()

        let response = try gateway.get("\(list)?page_size=abc")

        #expect(response.status == 422)
        #expect(
            response.text
                == #"{"detail":[{"type":"int_parsing","loc":["query","page_size"],"msg":"Input should be a valid integer, unable to parse string as an integer","input":"abc"}]}"#
        )
        #expect(gateway.upstream.requests.isEmpty)
        try await gateway.stop()
    }

    @Test func refusalsOverARealSocket() async throws {
        let gateway = try await GatewayHarness.start()

        let post = try gateway.get(list, method: "POST")
        let notFound = try gateway.get("/v1/convai/agents")
        #expect(post.status == 405)
        #expect(post.header("Allow") == "GET, HEAD")
        #expect(notFound.status == 404)

        let malformed = try TestHTTPConnection(port: gateway.port)
        try malformed.send("GET / HTTP/1.1\r\nHost: x\r\nBad Header Line\r\n\r\n")
        #expect(try malformed.readResponse().status == 400)
        #expect(malformed.waitForClose())

        let oversized = try TestHTTPConnection(port: gateway.port)
        try oversized.send("GET \(list) HTTP/1.1\r\nHost: h\r\nX-Big: \(String(repeating: "x", count: 20_000))\r\n\r\n")
        #expect(try oversized.readResponse().status == 431)
        #expect(oversized.waitForClose())

        #expect(gateway.upstream.requests.isEmpty)
        try await gateway.stop()
    }

    @Test func headHasTheHeadersOfGetWithoutABody() async throws {
        let gateway = try await GatewayHarness.start()

        let head = try gateway.get("\(list)?page_size=2", method: "HEAD")
        let get = try gateway.get("\(list)?page_size=2")

        #expect(head.status == 200)
        #expect(head.body.isEmpty)
        #expect(head.header("Content-Length") == String(get.body.count))
        #expect(get.header("Cache-Status")?.hasPrefix("xi-gateway; hit") == true)
        #expect(gateway.upstream.requests.count == 1)
        try await gateway.stop()
    }

    @Test func pipelinedRequestsAreAnsweredInOrderEvenWhenTheFirstIsSlow() async throws {
        let gateway = try await GatewayHarness.start { request in
            .page(for: request.uri, delay: request.uri.contains("page_size=1") ? .milliseconds(300) : .zero)
        }
        _ = try gateway.get("\(list)?page_size=2")

        let connection = try TestHTTPConnection(port: gateway.port)
        try connection.send(
            "GET \(list)?page_size=1 HTTP/1.1\r\nHost: x\r\n\r\nGET \(list)?page_size=2 HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        let first = try connection.readResponse()
        let second = try connection.readResponse()

        #expect(first.text == FakeUpstream.page(for: "\(list)?page_size=1"))
        #expect(second.text == FakeUpstream.page(for: "\(list)?page_size=2"))
        #expect(second.header("Cache-Status")?.hasPrefix("xi-gateway; hit") == true)
        try await gateway.stop()
    }

    @Test func keepsAliveThenClosesIdleConnections() async throws {
        let gateway = try await GatewayHarness.start(idleTimeout: .milliseconds(500))
        let connection = try TestHTTPConnection(port: gateway.port, timeoutSeconds: 5)

        for _ in 0..<3 {
            try connection.send("GET \(list) HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(try connection.readResponse().status == 200)
        }
        let started = ContinuousClock.now
        #expect(connection.waitForClose())
        #expect(ContinuousClock.now - started < .seconds(4))
        try await gateway.stop()
    }

    @Test func anUnreachableUpstreamIs502AndASlowOneIs504() async throws {
        let slow = try await GatewayHarness.start(timeoutMilliseconds: 300) { .page(for: $0.uri, delay: .seconds(3)) }
        let timedOut = try slow.get(list)
        #expect(timedOut.status == 504)
        #expect(
            timedOut.text
                == #"{"detail":{"status":"upstream_timeout","message":"the upstream did not answer in time"}}"#
        )
        try await slow.stop()

        let down = try await GatewayHarness.start()
        try await down.upstream.shutdown()
        let refused = try down.get(list)
        #expect(refused.status == 502)
        #expect(refused.text.contains("upstream_unavailable"))
        try await down.server.close()
        down.client.shutdown()
    }

    @Test func neitherAnswersNorErrorsEverCarryTheKey() async throws {
        let gateway = try await GatewayHarness.start { request in
            request.uri.contains("page_size=2") ? .init(status: 500, body: "{}") : .page(for: request.uri)
        }
        for target in [list, "\(list)?page_size=2", "\(list)?page_size=0", "/elsewhere", "\(list)?x=%zz"] {
            let response = try gateway.get(target)
            #expect(!response.text.contains(GatewayHarness.apiKey))
            #expect(!response.headers.contains { $0.value.contains(GatewayHarness.apiKey) })
        }
        try await gateway.stop()
    }
}
