import GatewayCore
import GatewayTesting
import Logging
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Prometheus
import Testing

@testable import GatewayServer

/// The one upstream path: what it sends, what it hands the governor, what it counts, and what every kind of
/// failure becomes, with time read from the one injected clock.
@Suite("GovernedUpstream")
struct GovernedUpstreamTests {
    let loop = EmbeddedEventLoop()
    let clock = ManualClock()
    let registry = PrometheusCollectorRegistry()
    let metrics: GatewayMetrics
    let governor: UpstreamGovernor

    init() {
        metrics = GatewayMetrics(registry: registry, libcurlVersion: "8.5.0")
        governor = UpstreamGovernor(
            configuration: .init(maxConcurrency: 2, maxQueue: 4, queueTimeout: .seconds(5), backoffMaxSeconds: 600),
            clock: clock
        )
    }

    private func upstream(_ client: any UpstreamClient) -> GovernedUpstream {
        GovernedUpstream(
            client: client,
            slots: governor,
            key: UpstreamKey(Secret("the-key")),
            clock: clock,
            metrics: metrics,
            logger: Logger(label: "test")
        )
    }

    private func scrape() -> String {
        metrics.publishTallies()
        var bytes: [UInt8] = []
        registry.emit(into: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    private func run(_ upstream: GovernedUpstream, _ request: UpstreamRequest) throws -> GovernedUpstream.Exchange {
        let future = upstream.execute(request, on: loop)
        loop.run()
        return try future.wait()
    }

    @Test func theRequestCarriesTheKeyAndNothingFromTheClientButItsIDAndBody() {
        let upstream = upstream(ScriptedUpstreamClient { _ in .failure(.connectFailed()) })
        let list = upstream.request(
            target: "/v1/convai/test-invocations?page_size=30",
            correlation: Correlation(requestID: "r-1")
        )
        #expect(list.method == .GET)
        #expect(list.body == nil)
        #expect(
            list.headers.map { "\($0.name): \($0.value)" } == [
                "xi-api-key: the-key", "Accept: application/json", "User-Agent: \(ListService.userAgent)",
                "X-Request-Id: r-1",
            ]
        )
        let write = upstream.request(method: .POST, target: "/v1/x", correlation: nil, body: nil, contentType: nil)
        #expect(write.body == ByteBuffer(), "a POST always sends a body, empty at worst")
        #expect(write.headers["Content-Type"] == ["application/json"])
        #expect(write.headers["X-Request-Id"].isEmpty)
    }

    @Test func anAnswerIsTimedOnTheInjectedClockAndCounted() throws {
        let clock = self.clock
        let client = ScriptedUpstreamClient { _ in
            clock.advance(seconds: 0.25)
            return .success(UpstreamResponse(status: 200, headers: [:], body: ByteBuffer(string: "{}")))
        }
        let exchange = try run(upstream(client), UpstreamRequest(target: "/a", headers: [:]))
        #expect(exchange.status == 200)
        #expect(exchange.nanoseconds == 250_000_000)
        #expect(exchange.reachedUpstream)
        #expect(governor.snapshot.inFlight == 0, "the slot is given back")
        #expect(scrape().contains(#"xi_gateway_upstream_requests_total{status="200",outcome="ok"} 1"#))
    }

    /// A 429's `Retry-After` date is read against the injected wall clock: the whole key backs off for
    /// the difference.
    @Test func a429DateBacksTheKeyOffByTheInjectedWallClock() throws {
        let date = "Fri, 15 Jan 2027 08:00:40 GMT"  // 40 s after the clock's wall start (1_800_000_000)
        let client = ScriptedUpstreamClient { _ in
            .success(UpstreamResponse(status: 429, headers: HTTPHeaders([("Retry-After", date)]), body: ByteBuffer()))
        }
        let upstream = upstream(client)
        let exchange = try run(upstream, UpstreamRequest(target: "/a", headers: [:]))
        #expect(exchange.status == 429)
        #expect(governor.snapshot.backoffSecondsLeft == 40)
        #expect(scrape().contains(#"xi_gateway_upstream_requests_total{status="429",outcome="429"} 1"#))

        // Backing off: the next request never reaches the upstream.
        let refused = try run(upstream, UpstreamRequest(target: "/b", headers: [:]))
        #expect(client.requests.map(\.target) == ["/a"])
        #expect(!refused.reachedUpstream)
        #expect(refused.nanoseconds == nil)
        guard case .failure(let error) = refused.result else {
            Issue.record("a refused request has no answer")
            return
        }
        #expect(error.shortDescription == GatewayError(.backingOff(secondsLeft: 40)).shortDescription)
        #expect(error.response().headers["Retry-After"] == ["40"])
    }

    @Test(
        arguments: [
            (UpstreamError.timedOut("slow"), "timeout"),
            (.connectFailed("refused"), "refused"),
            (.invalidResponse("garbage"), "error"),
        ]
    )
    func aTransportFailureBecomesTheGatewaysErrorAndIsCounted(failure: UpstreamError, outcome: String) throws {
        let client = ScriptedUpstreamClient { _ in .failure(failure) }
        let exchange = try run(upstream(client), UpstreamRequest(target: "/a", headers: [:]))
        #expect(exchange.reachedUpstream, "the request went out; its answer did not come")
        #expect(exchange.status == nil)
        guard case .failure(let error) = exchange.result else {
            Issue.record("expected a failure")
            return
        }
        #expect(error.shortDescription == GatewayError(failure).shortDescription)
        #expect(error.response().status == GatewayError(failure).response().status)
        #expect(governor.snapshot.inFlight == 0)
        #expect(scrape().contains("xi_gateway_upstream_requests_total{status=\"none\",outcome=\"\(outcome)\"} 1"))
    }
}
