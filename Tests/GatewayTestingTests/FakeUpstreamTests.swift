import GatewayCore
import GatewayTesting
import NIOCore
import NIOHTTP1
import Testing

@Suite("FakeUpstream and the test client")
struct FakeUpstreamTests {
    @Test func servesAPageThatEchoesTheQueryAndRecordsTheRequest() async throws {
        let upstream = try await FakeUpstream.start()

        let response = try TestHTTPConnection.request(
            port: upstream.port,
            target: "/v1/convai/test-invocations?agent_id=ag%201&page_size=4",
            headers: [("xi-api-key", "k")]
        )

        #expect(response.status == 200)
        #expect(JSONValidator.isValid(response.body))
        #expect(response.text.contains(#""agent_id":"ag 1""#))
        #expect(response.text.ranges(of: #""id":"inv_"#).count == 4)
        #expect(response.text.contains(#""query":"agent_id=ag%201&page_size=4""#))
        #expect(upstream.requests.count == 1)
        #expect(upstream.requests.first?.headers["xi-api-key"] == ["k"])
        try await upstream.shutdown()
    }

    @Test func aDefaultPageIsAboutTenKilobytesAtThirtyItems() {
        let page = FakeUpstream.page(for: "/v1/convai/test-invocations?page_size=30")
        #expect((9_000...14_000).contains(page.utf8.count))
    }

    @Test func followsItsScript() async throws {
        let upstream = try await FakeUpstream.start { request in
            request.uri.hasSuffix("drop")
                ? .init(body: "", delivery: .dropConnection)
                : .init(status: 503, headers: [("Retry-After", "7")], body: "busy")
        }

        let busy = try TestHTTPConnection.request(port: upstream.port, target: "/x")
        #expect(busy.status == 503)
        #expect(busy.header("retry-after") == "7")
        #expect(busy.text == "busy")

        let dropped = try TestHTTPConnection(port: upstream.port)
        try dropped.send("GET /drop HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(throws: TestHTTPError.self) { try dropped.readResponse() }
        #expect(upstream.connectionCount == 2)
        try await upstream.shutdown()
    }

    @Test func tracksConcurrency() async throws {
        let upstream = try await FakeUpstream.start { .page(for: $0.uri, delay: .milliseconds(200)) }
        let connections = try (0..<3).map { _ in try TestHTTPConnection(port: upstream.port) }

        for connection in connections {
            try connection.send("GET /v1/convai/test-invocations HTTP/1.1\r\nHost: h\r\n\r\n")
        }
        for connection in connections { #expect(try connection.readResponse().status == 200) }

        #expect(upstream.maxConcurrentRequests == 3)
        try await upstream.shutdown()
    }

    @Test func theManualClockMovesOnlyWhenTold() {
        let clock = ManualClock(start: 5)
        #expect(clock.nowNanoseconds() == 5)
        clock.advance(seconds: 1.5)
        #expect(clock.nowNanoseconds() == 1_500_000_005)
    }
}
