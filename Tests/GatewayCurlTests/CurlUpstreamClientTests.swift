import GatewayCore
import GatewayCurl
import GatewayTesting
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

@Suite("CurlUpstreamClient against a loopback fake upstream")
struct CurlUpstreamClientTests {
    private let eventLoop = MultiThreadedEventLoopGroup.singleton.next()

    private func makeClient(
        _ upstream: FakeUpstream,
        timeoutMilliseconds: Int = 5000,
        maxResponseBytes: Int = 8 * 1024 * 1024
    ) throws -> CurlUpstreamClient {
        try CurlUpstreamClient(
            configuration: CurlClientConfiguration(
                baseURL: UpstreamURL(upstream.baseURL),
                timeoutMilliseconds: timeoutMilliseconds,
                connectTimeoutMilliseconds: 2000,
                maxResponseBytes: maxResponseBytes
            ),
            logger: Logger(label: "test")
        )
    }

    private func request(_ target: String = "/v1/convai/test-invocations?page_size=3") -> UpstreamRequest {
        UpstreamRequest(
            target: target,
            headers: HTTPHeaders([("xi-api-key", "test-key"), ("Accept", "application/json")])
        )
    }

    private func expectFailure(
        _ future: EventLoopFuture<UpstreamResponse>,
        _ expected: UpstreamError,
        sourceLocation: SourceLocation = #_sourceLocation
    ) async {
        do {
            let response = try await future.get()
            Issue.record("expected \(expected), got status \(response.status)", sourceLocation: sourceLocation)
        } catch let error as UpstreamError {
            #expect(error == expected, "got \(error)", sourceLocation: sourceLocation)
        } catch {
            Issue.record("unexpected error \(error)", sourceLocation: sourceLocation)
        }
    }

    @Test func returnsStatusHeadersAndExactBodyAndSendsTheGivenHeaders() async throws {
        let upstream = try await FakeUpstream.start()
        let client = try makeClient(upstream)
        defer { client.shutdown() }

        let response = try await client.execute(request(), on: eventLoop).get()

        #expect(response.status == 200)
        #expect(response.headers.first(name: "content-type") == "application/json")
        #expect(String(buffer: response.body) == FakeUpstream.page(for: "/v1/convai/test-invocations?page_size=3"))
        let received = try #require(upstream.requests.first)
        #expect(received.method == .GET)
        #expect(received.uri == "/v1/convai/test-invocations?page_size=3")
        #expect(received.headers["xi-api-key"] == ["test-key"])
        #expect(received.headers["accept"] == ["application/json"])
        try await upstream.shutdown()
    }

    /// By default libcurl asks for any coding it can undo and undoes it: the body is the JSON, and the
    /// answer no longer names a coding. A request that keeps the coding gets the bytes as sent, with it.
    @Test(arguments: [false, true])
    func aContentCodingIsUndoneUnlessTheRequestKeepsIt(keeps: Bool) async throws {
        let upstream = try await FakeUpstream.start()
        let client = try makeClient(upstream)
        defer { client.shutdown() }
        var request = request()
        request.keepsContentCoding = keeps
        if keeps { request.headers.add(name: "Accept-Encoding", value: "gzip") }

        let response = try await client.execute(request, on: eventLoop).get()

        let json = FakeUpstream.page(for: "/v1/convai/test-invocations?page_size=3")
        let received = try #require(upstream.requests.first)
        #expect(received.headers["accept-encoding"].joined().contains("gzip"))
        if keeps {
            #expect(response.headers.first(name: "content-encoding") == "gzip")
            let unpacked = try response.body.withUnsafeReadableBytes { try Gzip.decompress($0, limit: 1 << 20) }
            #expect(String(decoding: unpacked, as: UTF8.self) == json)
            #expect(received.headers["accept-encoding"] == ["gzip"])
        } else {
            #expect(response.headers.first(name: "content-encoding") == nil)
            #expect(String(buffer: response.body) == json)
        }
        try await upstream.shutdown()
    }

    @Test func sendsAPostWithItsBodyAndContentType() async throws {
        let upstream = try await FakeUpstream.start { _ in .init(status: 201, body: #"{"id":"inv_1"}"#) }
        let client = try makeClient(upstream)
        defer { client.shutdown() }
        let body = String(repeating: "a", count: 5000)

        let response = try await client.execute(
            UpstreamRequest(
                method: .POST,
                target: "/v1/convai/agents/ag/run-tests",
                headers: HTTPHeaders([("Content-Type", "application/json"), ("xi-api-key", "k")]),
                body: ByteBuffer(string: #"{"pad":"\#(body)"}"#)
            ),
            on: eventLoop
        ).get()

        #expect(response.status == 201)
        let received = try #require(upstream.requests.first)
        #expect(received.method == .POST)
        #expect(received.uri == "/v1/convai/agents/ag/run-tests")
        #expect(received.body == #"{"pad":"\#(body)"}"#)
        #expect(received.headers["content-type"] == ["application/json"])
        #expect(received.headers["expect"].isEmpty)
        try await upstream.shutdown()
    }

    @Test func reusesOneConnectionForSequentialRequests() async throws {
        let upstream = try await FakeUpstream.start()
        let client = try makeClient(upstream)
        defer { client.shutdown() }

        for _ in 0..<5 {
            let response = try await client.execute(request(), on: eventLoop).get()
            #expect(response.status == 200)
        }

        #expect(upstream.requests.count == 5)
        #expect(upstream.connectionCount == 1)
        try await upstream.shutdown()
    }

    @Test func runsConcurrentRequestsAndAnswersEachWithItsOwnPage() async throws {
        let upstream = try await FakeUpstream.start { .page(for: $0.uri, delay: .milliseconds(50)) }
        let client = try makeClient(upstream)
        defer { client.shutdown() }

        let futures = (1...20).map { size in
            client.execute(request("/v1/convai/test-invocations?page_size=\(size)"), on: eventLoop)
        }
        for (index, future) in futures.enumerated() {
            let body = String(buffer: try await future.get().body)
            #expect(body == FakeUpstream.page(for: "/v1/convai/test-invocations?page_size=\(index + 1)"))
        }
        #expect(upstream.maxConcurrentRequests > 1)
        try await upstream.shutdown()
    }

    @Test func passesNonSuccessStatusesAndBodies() async throws {
        let upstream = try await FakeUpstream.start { _ in
            .init(
                status: 429,
                headers: [("Content-Type", "application/json"), ("Retry-After", "3")],
                body: #"{"detail":{"status":"too_many_concurrent_requests","message":"busy"}}"#
            )
        }
        let client = try makeClient(upstream)
        defer { client.shutdown() }

        let response = try await client.execute(request(), on: eventLoop).get()

        #expect(response.status == 429)
        #expect(response.headers.first(name: "retry-after") == "3")
        #expect(String(buffer: response.body).contains("too_many_concurrent_requests"))
        try await upstream.shutdown()
    }

    @Test func doesNotFollowRedirects() async throws {
        let upstream = try await FakeUpstream.start { _ in
            .init(status: 302, headers: [("Location", "http://127.0.0.1:9/elsewhere")], body: "")
        }
        let client = try makeClient(upstream)
        defer { client.shutdown() }

        let response = try await client.execute(request(), on: eventLoop).get()

        #expect(response.status == 302)
        #expect(upstream.requests.count == 1)
        try await upstream.shutdown()
    }

    @Test func timesOut() async throws {
        let upstream = try await FakeUpstream.start { .page(for: $0.uri, delay: .seconds(3)) }
        let client = try makeClient(upstream, timeoutMilliseconds: 200)
        defer { client.shutdown() }

        await expectFailure(client.execute(request(), on: eventLoop), .timedOut())
        try await upstream.shutdown()
    }

    @Test func reportsARefusedConnection() async throws {
        let closed = try await FakeUpstream.start()
        try await closed.shutdown()
        let client = try makeClient(closed)
        defer { client.shutdown() }

        await expectFailure(client.execute(request(), on: eventLoop), .connectFailed())
    }

    @Test func reportsAConnectionDroppedBeforeAnswering() async throws {
        let upstream = try await FakeUpstream.start { _ in .init(body: "", delivery: .dropConnection) }
        let client = try makeClient(upstream)
        defer { client.shutdown() }

        await expectFailure(client.execute(request(), on: eventLoop), .connectionReset())
        try await upstream.shutdown()
    }

    @Test func reportsAConnectionDroppedMidBody() async throws {
        let upstream = try await FakeUpstream.start {
            .init(body: FakeUpstream.page(for: $0.uri), delivery: .dropMidBody)
        }
        let client = try makeClient(upstream)
        defer { client.shutdown() }

        await expectFailure(client.execute(request(), on: eventLoop), .connectionReset())
        try await upstream.shutdown()
    }

    @Test func refusesABodyOverTheLimit() async throws {
        let upstream = try await FakeUpstream.start()
        let client = try makeClient(upstream, maxResponseBytes: 1000)
        defer { client.shutdown() }

        await expectFailure(client.execute(request(), on: eventLoop), .responseTooLarge())
        try await upstream.shutdown()
    }

    @Test func shutdownFailsRequestsInFlightAndLaterOnes() async throws {
        let upstream = try await FakeUpstream.start { .page(for: $0.uri, delay: .seconds(30)) }
        let client = try makeClient(upstream, timeoutMilliseconds: 60_000)

        let inFlight = (0..<3).map { _ in client.execute(request(), on: eventLoop) }
        // Wait until the fake has them, so they are really in flight.
        for _ in 0..<200 where upstream.requests.count < 3 { try await Task.sleep(for: .milliseconds(10)) }
        #expect(upstream.requests.count == 3)
        let started = ContinuousClock.now
        client.shutdown()
        for future in inFlight { await expectFailure(future, .shutDown()) }
        // Far sooner than the upstream would answer (generous: sanitizer builds are slow).
        #expect(ContinuousClock.now - started < .seconds(20))

        await expectFailure(client.execute(request(), on: eventLoop), .shutDown())
        client.shutdown()
        try await upstream.shutdown()
    }
}

/// libcurl reads `http_proxy`, `https_proxy` and `ALL_PROXY` from the environment unless told not to: the
/// gateway tells it not to, so a stray variable never routes the key through a proxy nobody configured;
/// `UPSTREAM_PROXY` is the one way to name a proxy. (The variables are set for the whole process while the
/// test runs; with the fix in place, no other test can notice.)
@Suite("CurlUpstreamClient and proxies", .serialized)
struct CurlProxyTests {
    private let eventLoop = MultiThreadedEventLoopGroup.singleton.next()
    private static let variables = ["http_proxy", "HTTP_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"]

    private func client(_ upstream: FakeUpstream, proxy: FakeUpstream?) throws -> CurlUpstreamClient {
        try CurlUpstreamClient(
            configuration: CurlClientConfiguration(
                baseURL: UpstreamURL(upstream.baseURL),
                timeoutMilliseconds: 5000,
                connectTimeoutMilliseconds: 2000,
                proxy: proxy.map { Secret($0.baseURL) }
            ),
            logger: Logger(label: "test")
        )
    }

    private func send(through client: CurlUpstreamClient) async throws -> UpstreamResponse {
        try await client.execute(
            UpstreamRequest(
                target: "/v1/convai/test-invocations?page_size=3",
                headers: HTTPHeaders([("xi-api-key", "k")])
            ),
            on: eventLoop
        ).get()
    }

    @Test func theEnvironmentsProxiesAreIgnored() async throws {
        let upstream = try await FakeUpstream.start()
        let stray = try await FakeUpstream.start()
        for name in Self.variables { setenv(name, stray.baseURL, 1) }
        defer { for name in Self.variables { unsetenv(name) } }
        let direct = try client(upstream, proxy: nil)
        defer { direct.shutdown() }

        let response = try await send(through: direct)

        #expect(response.status == 200)
        #expect(upstream.requests.count == 1)
        #expect(stray.requests.isEmpty)
        try await upstream.shutdown()
        try await stray.shutdown()
    }

    @Test func upstreamProxyIsTheOneWayToUseAProxy() async throws {
        let upstream = try await FakeUpstream.start()
        let proxy = try await FakeUpstream.start()
        let proxied = try client(upstream, proxy: proxy)
        defer { proxied.shutdown() }

        let response = try await send(through: proxied)

        #expect(response.status == 200)
        #expect(upstream.requests.isEmpty)
        // A proxy is asked in absolute form, for the upstream's address.
        #expect(proxy.requests.map(\.uri) == [upstream.baseURL + "/v1/convai/test-invocations?page_size=3"])
        try await upstream.shutdown()
        try await proxy.shutdown()
    }
}
