import GatewayCore
import GatewayTesting
import Logging
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@testable import GatewayServer

/// A service whose upstream requests stay open until the test answers them, on an embedded loop whose
/// time (for waits and queue timeouts) and a manual clock (for the cache and back-off) the test moves.
struct FlightFixture {
    let clock = ManualClock()
    let loop = EmbeddedEventLoop()
    let upstream = PendingUpstreamClient()
    let cache: ResponseCache
    let governor: UpstreamGovernor
    let service: ListService

    init(
        maxConcurrency: Int = 4,
        maxQueue: Int = 1024,
        queueTimeout: TimeAmount = .seconds(5),
        staleSeconds: Int = 300,
        waitLimit: TimeAmount = .seconds(10)
    ) {
        cache = ResponseCache(
            maxBytes: 1 << 20,
            ttlSeconds: 30,
            staleSeconds: staleSeconds,
            shardCount: 1,
            clock: clock
        )
        governor = UpstreamGovernor(
            configuration: .init(
                maxConcurrency: maxConcurrency,
                maxQueue: maxQueue,
                queueTimeout: queueTimeout,
                backoffMaxSeconds: 30
            ),
            clock: clock
        )
        service = ListService(
            cache: cache,
            upstream: upstream,
            governor: governor,
            apiKey: Secret("k"),
            waitLimit: waitLimit,
            logger: Logger(label: "test"),
            clock: clock
        )
    }

    func request(_ query: String) -> EventLoopFuture<GatewayResponse> {
        let future = service.respond(toQuery: Substring(query), on: loop)
        loop.run()
        return future
    }

    /// Answers the oldest open upstream request (or the one for `target`) and lets the loop run.
    func answer(_ result: Result<UpstreamResponse, UpstreamError>, target: String? = nil) {
        #expect(upstream.answer(result, targetContaining: target))
        loop.run()
    }

    static func json(
        _ body: String,
        status: Int = 200,
        headers: [(String, String)] = []
    ) -> Result<
        UpstreamResponse, UpstreamError
    > {
        .success(
            UpstreamResponse(
                status: status,
                headers: HTTPHeaders([("Content-Type", "application/json")] + headers),
                body: ByteBuffer(string: body)
            )
        )
    }

    /// The answer of a finished request; records an issue when it is still waiting.
    func answered(
        _ future: EventLoopFuture<GatewayResponse>,
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws -> GatewayResponse {
        var result: Result<GatewayResponse, any Error>?
        future.assumeIsolated().whenComplete { result = $0 }
        loop.run()
        let finished = try #require(result, "the request is still waiting", sourceLocation: sourceLocation)
        return try finished.get()
    }

    func isWaiting(_ future: EventLoopFuture<GatewayResponse>) -> Bool {
        var done = false
        future.assumeIsolated().whenComplete { _ in done = true }
        loop.run()
        return !done
    }
}

@Suite("ListService: single flight, stale pages and the governor")
struct ListServiceFlightTests {
    @Test func aHundredConcurrentColdRequestsMakeOneUpstreamRequest() throws {
        let fixture = FlightFixture()

        let futures = (0..<100).map { _ in fixture.request("page_size=5") }
        #expect(fixture.upstream.requests.count == 1)
        #expect(fixture.service.flightStatistics.waiters == 100)
        #expect(fixture.service.flightStatistics.flights == 1)
        #expect(futures.allSatisfy { fixture.isWaiting($0) })

        fixture.answer(FlightFixture.json(#"{"results":[1],"has_more":false}"#))

        let responses = try futures.map { try fixture.answered($0) }
        #expect(responses.allSatisfy { $0.status == .ok })
        #expect(responses.allSatisfy { String(buffer: $0.body) == #"{"results":[1],"has_more":false}"# })
        #expect(responses[0].cacheStatus?.description == "xi-gateway; fwd=miss; fwd-status=200; stored")
        #expect(
            responses.dropFirst().allSatisfy {
                $0.cacheStatus?.description == "xi-gateway; fwd=miss; fwd-status=200; stored; collapsed"
            }
        )
        #expect(fixture.service.flightStatistics.waiters == 0)
        let hit = try fixture.answered(fixture.request("page_size=5"))
        #expect(hit.cacheStatus?.description.hasPrefix("xi-gateway; hit") == true)
        #expect(fixture.upstream.requests.count == 1)
    }

    @Test func aFailureReachesEveryWaiterAndTheNextRequestTriesAgain() throws {
        let fixture = FlightFixture()

        let futures = (0..<3).map { _ in fixture.request("") }
        fixture.answer(.failure(.timedOut("slow")))

        for future in futures { #expect(try fixture.answered(future).status == .gatewayTimeout) }
        let retry = fixture.request("")
        #expect(fixture.upstream.requests.count == 2)
        fixture.answer(FlightFixture.json("{}"))
        #expect(try fixture.answered(retry).status == .ok)
    }

    @Test func aWaiterPastTheWaitLimitGets504WhileTheFetchGoesOnForTheOthers() throws {
        let fixture = FlightFixture(waitLimit: .seconds(10))

        let early = fixture.request("page_size=9")
        fixture.loop.advanceTime(by: .seconds(6))
        let late = fixture.request("page_size=9")
        fixture.loop.advanceTime(by: .seconds(4))

        let timedOut = try fixture.answered(early)
        #expect(timedOut.status == .gatewayTimeout)
        #expect(String(buffer: timedOut.body).contains("upstream_timeout"))
        #expect(fixture.isWaiting(late))
        #expect(fixture.upstream.openTargets.count == 1)

        fixture.answer(FlightFixture.json(#"{"ok":true}"#))
        #expect(try fixture.answered(late).status == .ok)
        let hit = try fixture.answered(fixture.request("page_size=9"))
        #expect(hit.cacheStatus?.description.hasPrefix("xi-gateway; hit") == true)
    }

    @Test func aStalePageIsServedAtOnceWhileExactlyOneRefreshRuns() throws {
        let fixture = FlightFixture()
        _ = fixture.request("")
        fixture.answer(FlightFixture.json(#"{"version":1}"#))
        fixture.clock.advance(seconds: 31)

        let stale = try (0..<5).map { _ in try fixture.answered(fixture.request("")) }

        #expect(stale.allSatisfy { String(buffer: $0.body) == #"{"version":1}"# })
        #expect(
            stale.allSatisfy {
                $0.cacheStatus?.description == "xi-gateway; hit; ttl=-1; detail=stale-while-revalidate"
            }
        )
        #expect(stale.allSatisfy { $0.age == 31 })
        #expect(fixture.upstream.requests.count == 2)
        #expect(fixture.upstream.openTargets.count == 1)

        fixture.answer(FlightFixture.json(#"{"version":2}"#))
        let fresh = try fixture.answered(fixture.request(""))
        #expect(String(buffer: fresh.body) == #"{"version":2}"#)
        #expect(fresh.cacheStatus?.description.hasPrefix("xi-gateway; hit; ttl=") == true)
        #expect(fixture.upstream.requests.count == 2)
    }

    @Test(
        arguments: [
            FlightFixture.json(#"{"detail":"boom"}"#, status: 500),
            .failure(.timedOut("slow")),
            .failure(.connectionReset("dropped")),
            FlightFixture.json("<html>", status: 200),
        ]
    )
    func aFailedRefreshLeavesTheStalePageServedAsStaleIfError(outcome: Result<UpstreamResponse, UpstreamError>) throws {
        let fixture = FlightFixture()
        _ = fixture.request("agent_id=a")
        fixture.answer(FlightFixture.json(#"{"version":1}"#))
        fixture.clock.advance(seconds: 40)

        _ = try fixture.answered(fixture.request("agent_id=a"))
        fixture.answer(outcome)
        let afterFailure = try fixture.answered(fixture.request("agent_id=a"))

        #expect(afterFailure.status == .ok)
        #expect(String(buffer: afterFailure.body) == #"{"version":1}"#)
        #expect(afterFailure.cacheStatus?.description == "xi-gateway; hit; ttl=-10; detail=stale-if-error")
    }

    @Test func pastTheStaleWindowThePageIsGone() throws {
        let fixture = FlightFixture(staleSeconds: 300)
        _ = fixture.request("")
        fixture.answer(FlightFixture.json(#"{"version":1}"#))
        fixture.clock.advance(seconds: 330)

        let future = fixture.request("")

        #expect(fixture.isWaiting(future))
        #expect(fixture.upstream.requests.count == 2)
    }

    @Test(arguments: [401, 403, 404, 422])
    func anAnswerSayingThePageIsWrongDropsIt(status: Int) throws {
        let fixture = FlightFixture()
        _ = fixture.request("")
        fixture.answer(FlightFixture.json(#"{"version":1}"#))
        fixture.clock.advance(seconds: 31)
        _ = try fixture.answered(fixture.request(""))

        fixture.answer(FlightFixture.json(#"{"detail":"no"}"#, status: status))
        let next = fixture.request("")

        #expect(fixture.isWaiting(next))
        #expect(fixture.cache.statistics.entries == 0)
    }

    @Test func withACapOfTwoTwentyColdKeysNeverOverlapMoreThanTwoAndAllSucceed() throws {
        let fixture = FlightFixture(maxConcurrency: 2)

        let futures = (1...20).map { fixture.request("page_size=\($0)") }
        #expect(fixture.upstream.openTargets.count == 2)
        #expect(fixture.governor.snapshot.queued == 18)
        while let target = fixture.upstream.openTargets.first {
            #expect(fixture.upstream.openTargets.count <= 2)
            fixture.answer(FlightFixture.json(#"{"target":"\#(target)"}"#), target: target)
        }

        #expect(fixture.upstream.maxOpen == 2)
        #expect(fixture.upstream.requests.count == 20)
        for (index, future) in futures.enumerated() {
            let response = try fixture.answered(future)
            #expect(response.status == .ok)
            #expect(String(buffer: response.body).contains("page_size=\(index + 1)\""))
        }
        let snapshot = fixture.governor.snapshot
        #expect(snapshot.inFlight == 0)
        #expect(snapshot.queued == 0)
        #expect(snapshot.limit == 2)
    }

    @Test func cacheHitsNeverWaitForTheGovernor() throws {
        let fixture = FlightFixture(maxConcurrency: 1)
        _ = fixture.request("agent_id=hot")
        fixture.answer(FlightFixture.json("{}"))

        let slow = fixture.request("agent_id=cold")
        let hit = try fixture.answered(fixture.request("agent_id=hot"))

        #expect(hit.status == .ok)
        #expect(fixture.isWaiting(slow))
    }

    @Test func a429WithRetryAfterStopsEveryKeyServesStalePagesAndThenResumes() throws {
        let fixture = FlightFixture()
        _ = fixture.request("agent_id=stale")
        fixture.answer(FlightFixture.json(#"{"page":"stale"}"#))
        fixture.clock.advance(seconds: 31)

        let tripping = fixture.request("agent_id=first")
        fixture.answer(
            FlightFixture.json(
                #"{"detail":{"status":"too_many_concurrent_requests","message":"busy"}}"#,
                status: 429,
                headers: [("Retry-After", "2")]
            )
        )
        let upstreamAnswer = try fixture.answered(tripping)
        #expect(upstreamAnswer.status == .tooManyRequests)
        #expect(upstreamAnswer.headers["Retry-After"] == ["2"])
        #expect(fixture.governor.snapshot.backoffSecondsLeft == 2)

        let refused = try fixture.answered(fixture.request("agent_id=other"))
        let stale = try fixture.answered(fixture.request("agent_id=stale"))
        #expect(refused.status == .tooManyRequests)
        #expect(refused.headers["Retry-After"] == ["2"])
        #expect(String(buffer: refused.body).contains(#""status":"rate_limit_exceeded""#))
        #expect(stale.status == .ok)
        #expect(String(buffer: stale.body) == #"{"page":"stale"}"#)
        #expect(fixture.upstream.requests.count == 2)

        fixture.clock.advance(seconds: 1)
        #expect(try fixture.answered(fixture.request("agent_id=other")).headers["Retry-After"] == ["1"])
        fixture.clock.advance(seconds: 1)
        let resumed = fixture.request("agent_id=other")
        #expect(fixture.upstream.requests.count == 3)
        fixture.answer(FlightFixture.json("{}"))
        #expect(try fixture.answered(resumed).status == .ok)
    }

    @Test func a429WithoutRetryAfterBacksOffExponentially() throws {
        let fixture = FlightFixture()
        let busy = FlightFixture.json("{}", status: 429)

        _ = fixture.request("agent_id=1")
        fixture.answer(busy)
        #expect(try fixture.answered(fixture.request("agent_id=2")).headers["Retry-After"] == ["1"])
        fixture.clock.advance(seconds: 1)
        _ = fixture.request("agent_id=3")
        fixture.answer(busy)
        #expect(try fixture.answered(fixture.request("agent_id=4")).headers["Retry-After"] == ["2"])
        fixture.clock.advance(seconds: 2)
        _ = fixture.request("agent_id=5")
        fixture.answer(FlightFixture.json("{}"))
        _ = fixture.request("agent_id=6")
        fixture.answer(busy)
        #expect(try fixture.answered(fixture.request("agent_id=7")).headers["Retry-After"] == ["1"])
    }

    @Test func theUpstreamsOwnMaximumBecomesTheCap() throws {
        let fixture = FlightFixture(maxConcurrency: 4)
        _ = fixture.request("agent_id=0")
        fixture.answer(
            FlightFixture.json(
                "{}",
                status: 429,
                headers: [("Retry-After", "0"), ("maximum-concurrent-requests", "1")]
            )
        )

        _ = (1...3).map { fixture.request("agent_id=\($0)") }

        #expect(fixture.upstream.openTargets.count == 1)
        #expect(fixture.governor.snapshot.limit == 1)
        #expect(fixture.governor.snapshot.queued == 2)
    }

    @Test func aFullQueueIsRefusedAtOnceAndALongWaitAfterTheQueueTimeout() throws {
        let fixture = FlightFixture(maxConcurrency: 1, maxQueue: 1, queueTimeout: .seconds(5))

        _ = fixture.request("agent_id=1")
        let queued = fixture.request("agent_id=2")
        let full = try fixture.answered(fixture.request("agent_id=3"))
        #expect(full.status == .serviceUnavailable)
        #expect(full.headers["Retry-After"] == ["1"])
        #expect(String(buffer: full.body).contains(#""status":"system_busy""#))
        #expect(fixture.isWaiting(queued))

        fixture.loop.advanceTime(by: .seconds(5))
        #expect(try fixture.answered(queued).status == .serviceUnavailable)
        #expect(fixture.upstream.requests.count == 1)
    }
}

@Suite("ListService: refreshes do not pile up")
struct ListServiceRefreshTests {
    @Test func staleHitsDuringARefreshAddNoWaiters() throws {
        let fixture = FlightFixture()
        _ = fixture.request("")
        fixture.answer(FlightFixture.json("{}"))
        fixture.clock.advance(seconds: 31)

        for _ in 0..<50 { _ = try fixture.answered(fixture.request("")) }

        #expect(fixture.service.flightStatistics.flights == 1)
        #expect(fixture.service.flightStatistics.waiters == 0)
        #expect(fixture.upstream.openTargets.count == 1)
    }

    @Test func aLearnedLimitRisesAgainAfterARunOfSuccesses() throws {
        let fixture = FlightFixture(maxConcurrency: 3)
        _ = fixture.request("agent_id=trip")
        fixture.answer(
            FlightFixture.json(
                "{}",
                status: 429,
                headers: [("Retry-After", "0"), ("maximum-concurrent-requests", "1")]
            )
        )
        #expect(fixture.governor.snapshot.limit == 1)

        for index in 0..<UpstreamGovernor.successesToRaiseLimit {
            _ = fixture.request("agent_id=ok\(index)")
            fixture.answer(FlightFixture.json("{}"))
        }
        #expect(fixture.governor.snapshot.limit == 2)
        for index in 0..<UpstreamGovernor.successesToRaiseLimit {
            _ = fixture.request("agent_id=more\(index)")
            fixture.answer(FlightFixture.json("{}"))
        }
        #expect(fixture.governor.snapshot.limit == 3)
    }
}
