import GatewayCore
import GatewayTesting
import Testing

@testable import GatewayServer

/// The list route reads the client's `Cache-Control` unless `CLIENT_CACHE_CONTROL=off`.
@Suite("Cache-Control from the client, through a connection")
struct ClientCacheControlTests {
    private let list = "/v1/convai/test-invocations"

    private func get(
        _ connection: ConnectionFixture,
        _ headers: String = ""
    ) throws -> (status: String, headers: [String: String], body: String)? {
        parseResponses(try connection.exchange("GET \(list)?page_size=3 HTTP/1.1\r\nHost: h\r\n\(headers)\r\n")).first
    }

    @Test func noCacheAndOnlyIfCachedAreHonoured() throws {
        let connection = try ConnectionFixture()
        #expect(try get(connection, "Cache-Control: only-if-cached\r\n")?.status == "HTTP/1.1 504 Gateway Timeout")
        #expect(connection.fixture.upstream.requests.isEmpty)
        _ = try get(connection)
        let refreshed = try get(connection, "Cache-Control: no-cache\r\n")
        #expect(refreshed?.headers["cache-status"] == "xi-gateway; fwd=request; fwd-status=200; stored")
        #expect(connection.fixture.upstream.requests.count == 2)
        #expect(try get(connection, "cache-control: max-age=60\r\n")?.headers["cache-status"]?.contains("hit") == true)
        #expect(connection.fixture.upstream.requests.count == 2)
        // Directives on two lines are one list: no-cache on the second line counts.
        _ = try get(connection, "Cache-Control: max-age=60\r\nCache-Control: no-cache\r\n")
        #expect(connection.fixture.upstream.requests.count == 3)
    }

    @Test func offIgnoresThem() throws {
        let connection = try ConnectionFixture()
        connection.context.update(.init(accessLog: true, adminToken: nil, clientCacheControl: false))
        _ = try get(connection)
        let answer = try get(connection, "Cache-Control: no-cache\r\n")
        #expect(answer?.headers["cache-status"] == "xi-gateway; hit; ttl=30")
        #expect(try get(connection, "Cache-Control: only-if-cached\r\n")?.status == "HTTP/1.1 200 OK")
        #expect(connection.fixture.upstream.requests.count == 1)
    }
}
